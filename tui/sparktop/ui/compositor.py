"""A compositor that repaints only the rows that changed.

Textual's partial update finds the box around the changed regions, then asks every widget
whose *clip* overlaps that box for all of its lines, and keeps the rows it needs. A
top-level widget's clip is the whole screen, so a one-line change at 200×60 has the screen,
the side-by-side panels, the servers box, the footer and the top bar each hand back every
line they own (from cache, but each line still passes through the filters and caches), and
that per-widget, per-line walk is most of what a repaint costs there.

`RowCompositor` asks only the widgets whose visible part meets the box, and only for the
rows of the box. Full updates, screenshots and exports take Textual's own path unchanged.
tests/test_compositor.py checks that both give the same cells.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip


class RowCompositor(Compositor):
    """Compositor whose partial updates render just the changed rows of the widgets there."""

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        screen = self.size.region
        if crop is None or crop.contains_region(screen):
            yield from super()._get_renders(crop)
            return
        band = Region(screen.x, crop.y, screen.width, crop.height)  # whole rows: cuts stay
        for widget, (region, clip) in self.visible_widgets.items():
            clip = clip.intersection(band)
            visible = region.intersection(clip)
            if not visible.area or not visible.overlaps(crop):
                continue
            x, y, width, height = visible
            yield (
                region,
                clip,
                widget.render_lines(Region(x - region.x, y - region.y, width, height)),
            )


TESTED_TEXTUAL = ("8.2.",)
"""Textual releases whose private compositor this was checked against (tests/test_compositor.py);
on any other, the screen is painted by Textual's own (correct, only dearer)."""


def supported() -> bool:
    """This Textual is one RowCompositor was checked against, with the hooks it relies on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        textual_version = version("textual")
    except PackageNotFoundError:
        return False
    return (
        textual_version.startswith(TESTED_TEXTUAL)
        and callable(getattr(Compositor, "_get_renders", None))
        and hasattr(Compositor, "visible_widgets")
    )


def row_compositor_screen(**kwargs: object) -> Screen:
    """A Screen repainted through RowCompositor (Textual's own where that is not possible)."""
    screen = Screen(**kwargs)  # type: ignore[arg-type]
    if supported():
        screen._compositor = RowCompositor()
    return screen
