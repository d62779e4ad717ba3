"""sparktop's row compositor paints exactly what Textual's own would, in fewer renders."""

from __future__ import annotations

import asyncio
from functools import partial

from conftest import make_app
from textual._compositor import Compositor
from textual.geometry import Region
from textual.widget import Widget

from sparktop.ui.compositor import RowCompositor
from sparktop.ui.widgets.panel import Line


def paint(compositor: Compositor, regions: set[Region], console, textual: bool) -> str:
    """The bytes a partial update of `regions` sends to the terminal."""
    if textual:  # Textual's own partial update, on the same layout
        compositor._get_renders = partial(Compositor._get_renders, compositor)
    try:
        compositor._dirty_regions = set(regions)
        update = compositor.render_partial_update()
    finally:
        compositor.__dict__.pop("_get_renders", None)
    assert update is not None
    return update.render_segments(console)


async def shown(app, pilot) -> Compositor:
    """Wait until the app shows data; its main screen's compositor."""
    await asyncio.wait_for(app.snapshot_ready.wait(), 10)
    await pilot.pause(0.5)
    return app.screen._compositor


async def test_partial_updates_send_the_same_cells_as_textual_at_200x60():
    app = make_app("spark", interval=0.2)
    async with app.run_test(size=(200, 60)) as pilot:
        compositor = await shown(app, pilot)
        assert isinstance(compositor, RowCompositor)
        lines = [w for w in app.main._memory.children if isinstance(w, Line)]
        topbar = app.query_one("#topbar")
        footer = app.query_one("Footer")
        gpu_lines = list(app.query_one("#gpu-panel").children)
        cases: list[set[Region]] = [
            {lines[0].region},  # one figure in the left panel
            {lines[-1].region},  # a multi-row line
            {gpu_lines[0].region},  # the right-hand panel
            {lines[0].region, gpu_lines[-1].region},  # both panels, different rows
            {topbar.region, footer.region},  # the top and bottom rows: the whole screen between
            {Region(95, 3, 10, 4)},  # across the border between the panels
            {Region(150, 20, 3, 1)},  # inside a panel's empty space
        ]
        console = app.console
        for regions in cases:
            ours = paint(compositor, regions, console, textual=False)
            theirs = paint(compositor, regions, console, textual=True)
            assert ours == theirs, regions


async def test_a_one_line_change_renders_only_the_widgets_on_that_row():
    app = make_app("spark", interval=0.2)
    async with app.run_test(size=(200, 60)) as pilot:
        compositor = await shown(app, pilot)
        line = next(w for w in app.main._memory.children if isinstance(w, Line))
        rendered: list[tuple[Widget, int]] = []
        original = Widget.render_lines

        def counting(self: Widget, crop: Region):
            strips = original(self, crop)
            rendered.append((self, len(strips)))
            return strips

        Widget.render_lines = counting  # type: ignore[method-assign]
        try:
            compositor._dirty_regions = {line.region}
            compositor.render_partial_update()
        finally:
            Widget.render_lines = original  # type: ignore[method-assign]
        assert {type(w).__name__ for w, _ in rendered} == {
            "MainScreen",
            "Container",
            "MemoryPanel",
            "Line",
        }
        assert all(rows == 1 for _, rows in rendered)  # one row each, not the whole screen
