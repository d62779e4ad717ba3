"""Base for panels that draw one Snapshot as a stack of lines, repainting only the lines
whose content changed.

At a 1 s refresh most ticks change one or two lines (a sparkline shifts, a figure moves
by 0.1 GiB); repainting just those, not the whole panel, is what keeps sparktop cheap in
a tmux pane (see tests/bench/tui_budget.py).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from textual.content import Content
from textual.events import Resize
from textual.message import Message
from textual.widget import Widget

from sparktop.snapshot import Snapshot


def _key(content: Content) -> tuple[Any, ...]:
    return (content.plain, tuple(content.spans))


def rows_at(content: Content, width: int) -> int:
    """Rows `content` takes at `width` (styles do not change where text wraps)."""
    return _rows(content.plain, width)


@lru_cache(maxsize=256)
def _rows(plain: str, width: int) -> int:
    """Wraps only when a line cannot fit, and remembers: a long hint under the memory bar was
    wrapped again at every refresh to size the history chart below it."""
    parts = plain.split("\n")
    if all(cell_len(part) <= width for part in parts):
        return len(parts)
    return len(Content(plain).wrap(width))


class Line(Widget):
    """One logical line of a panel (it may wrap onto several rows)."""

    DEFAULT_CSS = "Line { height: auto; }"

    def __init__(self, content: Content) -> None:
        super().__init__()
        self.auto_links = False
        """Panels hold no links; Textual otherwise restyles every rendered strip for them
        (a third of a repaint's cost at 200×60, tests/bench/tui_budget.py)."""
        self._content = content
        self._key = _key(content)
        self._rows = 0

    def set(self, content: Content) -> None:
        if content is self._content:
            return
        key = _key(content)
        if key == self._key:
            return
        width = self.content_size.width
        rows = rows_at(content, width) if width else 0
        relayout = rows != self._rows or not width
        self._rows = rows
        self._content, self._key = content, key
        self.refresh(layout=relayout)

    def render(self) -> Content:
        return self._content


class SnapshotPanel(Widget):
    """A panel whose `build()` turns the latest Snapshot into lines."""

    DEFAULT_CSS = "SnapshotPanel { layout: vertical; }"

    class RowsChanged(Message):
        """The rows the panel's text needs changed (a hint came, a line wraps now): the
        screen shares its rows out again."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot: Snapshot | None = None
        self.rows = 0
        """Rows the text needs at the panel's width (`needed_rows` of the last build)."""

    def needed_rows(self, lines: list[Content], width: int) -> int:
        """Rows the panel asks for; by default all its lines take."""
        return sum(rows_at(line, width) for line in lines)

    def build(self, width: int, height: int) -> list[Content]:
        """The panel's lines for a box of `width` × `height` cells."""
        raise NotImplementedError

    def record(self, snapshot: Snapshot) -> None:
        """Update histories from a new snapshot (called before build)."""

    def show(self, snapshot: Snapshot, record: bool = True) -> None:
        if record:
            self.record(snapshot)
        self.snapshot = snapshot
        self.redraw()

    def redraw(self) -> None:
        size = self.content_size
        width = max(10, size.width or 76)
        lines = self.build(width, size.height)
        rows = self.needed_rows(lines, width)
        if rows != self.rows:
            self.rows = rows
            self.post_message(self.RowsChanged())
        children = [child for child in self.children if isinstance(child, Line)]
        for child, content in zip(children, lines, strict=False):
            child.set(content)
        if len(lines) > len(children):
            self.mount_all([Line(content) for content in lines[len(children) :]])
        for child in children[len(lines) :]:
            child.remove()

    def on_resize(self, event: Resize) -> None:
        self.redraw()

    def text(self) -> str:
        """Everything the panel shows, as plain text (for tests and debugging)."""
        return "\n".join(child.render().plain for child in self.children if isinstance(child, Line))
