"""A DataTable for rows that change in place every poll (servers, downloads).

Textual's DataTable keys every rendered cell by a table-wide update counter, so changing
one cell (a server's memory figure) renders every cell of the table again through Rich,
the dearest repaint on sparktop's main screen (tests/bench/tui_budget.py, 200×60 with 4
servers). `LiveTable` keeps rendered cells by what they show instead: only cells whose
text changed are rendered again.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache

from sparktop.ui.widgets.row_table import RowTable


class LiveTable(RowTable):
    """A row table with bounded caches and cell renders reused while their text is the same."""

    def __init__(self, *, cells: int = 1024, lines: int = 256, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Textual keeps up to 10,000 cells and 1,000 rows and lines; with figures changing
        # at every poll those fill with stale renders over a week (several MiB). These
        # bounds still hold every cell of a full-screen table.
        self._cell_render_cache = LRUCache(cells)
        self._row_render_cache = LRUCache(lines)
        self._row_renderable_cache = LRUCache(lines)
        self._line_cache = LRUCache(lines)
        self._cells_by_text: LRUCache[tuple, list[list[Segment]]] = LRUCache(cells)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        value = self._cell_value(row_index, column_index)
        if not isinstance(value, str):  # only plain text is known to render the same
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_index,
            column_index,
            value,
            base_style,
            width,
            cursor,
            hover,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        lines = self._cells_by_text.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells_by_text[key] = lines
        return lines

    def _clear_caches(self) -> None:
        """Whatever makes Textual forget its rendered cells (cursor, fixed rows, header or
        padding changes) makes this table forget its own too."""
        super()._clear_caches()
        self._cells_by_text.clear()

    def notify_style_update(self) -> None:
        """A theme or CSS change restyles every cell."""
        super().notify_style_update()
        self._cells_by_text.clear()

    def _cell_value(self, row_index: int, column_index: int) -> object:
        """What the cell shows: a column label for the header row, else the cell's value."""
        try:
            column_key = self._column_locations.get_key(column_index)
            if row_index == -1:
                return self.columns[column_key].label.plain
            if column_index == -1:
                return None
            row_key = self._row_locations.get_key(row_index)
            return self._data[row_key][column_key]
        except (KeyError, AttributeError):
            return None
