"""The row-cursor table every sparktop list uses (servers, downloads, models, hosts).

Textual's DataTable moves its row cursor with ↑/↓ and PgUp/PgDn, but its Home/End only
scroll sideways; here Home/End go to the first/last row and j/k move like ↓/↑.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class RowTable(DataTable):
    """A DataTable with a row cursor and the row keys people expect from top-like tools."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
        Binding("j", "cursor_down", "Row down", show=False),
        Binding("k", "cursor_up", "Row up", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(**kwargs)
