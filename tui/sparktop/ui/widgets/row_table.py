"""The row-cursor table every sparktop list uses (servers, downloads, models, hosts).

Textual's DataTable moves its row cursor with ↑/↓ and PgUp/PgDn, but its Home/End only
scroll sideways; here Home/End go to the first/last row and j/k move like ↓/↑. Tables that
can be sorted and filtered (`SortFilter`) take `o` (next sort column) and `/` (filter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input

SORTED = " ▼"
"""After the label of the column rows are sorted by."""


def cell_width(cell: object) -> int:
    """Columns a cell's text takes (a str or a Rich Text)."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


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

    def fit_widths(self) -> None:
        """Each column as wide as its label and widest cell now: Textual's DataTable only
        widens them (a removed row or a label losing its sort mark left them wide)."""
        changed = False
        for key, column in self.columns.items():
            cells = max((cell_width(cell) for cell in self.get_column(key)), default=0)
            width = max(column.label.cell_len, cells)
            if column.content_width != width:
                column.content_width = width
                changed = True
        if changed:
            self._require_update_dimensions = True  # the scrollable width again, at idle
            self._clear_caches()
            self.refresh()


class FilterInput(Input):
    """The `/` line under a table: rows containing its text stay; enter keeps the filter and
    goes back to the rows, esc clears it."""

    DEFAULT_CSS = """
    FilterInput.-textual-compact { padding: 0 1; }
    """

    def __init__(self, table: SortFilter, **kwargs: Any) -> None:
        # compact: one line with no border, focused too (Input's own `:focus` border, three
        # rows tall, left a one-row input showing its border and none of the text)
        super().__init__(value=table.filter_text, placeholder="filter rows (esc clears)",
                         compact=True, **kwargs)  # fmt: skip
        self.table = table

    def on_mount(self) -> None:
        self.table.add_class("-filtering")  # a table sized to its rows leaves this line room

    def on_unmount(self) -> None:
        self.table.remove_class("-filtering")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    async def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            event.stop()
            event.prevent_default()
            self.table.set_filter("")
            self.table.focus()
            await self.remove()


class SortFilter(RowTable):
    """A row table whose rows can be sorted (`o` cycles SORTS) and filtered (`/`).

    Subclasses name their sort choices in SORTS (the first: the table's own order) and show
    their rows again in `view_changed()`, using `sort_by` and `matches()`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "sort", "Sort"),
        Binding("slash", "filter", "Filter", key_display="/"),
    ]
    SORTS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sort_index = 0
        self.filter_text = ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Sort and filter are offered (and in the footer) only when there are rows to sort
        or a filter to change."""
        if action in ("sort", "filter") and self.row_count == 0 and not self.filter_text:
            return False
        return super().check_action(action, parameters)

    @property
    def sort_by(self) -> str:
        return self.SORTS[self.sort_index] if self.SORTS else ""

    def matches(self, cells: Sequence[str]) -> bool:
        """Whether a row with these cells passes the filter (any cell containing it)."""
        wanted = self.filter_text.strip().lower()
        return not wanted or any(wanted in str(cell).lower() for cell in cells)

    def action_sort(self) -> None:
        if not self.SORTS:
            return
        self.sort_index = (self.sort_index + 1) % len(self.SORTS)
        self.mark_sorted()
        self.view_changed()
        self.notify(f"sorted by {self.sort_by}", timeout=2)

    def mark_sorted(self) -> None:
        """The sorted column's label carries ▼ (no mark for the table's own order)."""
        for key, column in self.columns.items():
            plain = column.label.plain.removesuffix(SORTED)
            label = plain + SORTED if key.value == self.sort_by and self.sort_index else plain
            if column.label.plain != label:
                column.label = Text(label)
        self.fit_widths()

    async def action_filter(self) -> None:
        existing = [w for w in self.screen.query(FilterInput) if w.table is self]
        if existing:
            existing[0].focus()
            return
        line = FilterInput(self)
        assert self.parent is not None
        await self.parent.mount(line, after=self)
        line.focus()

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self.view_changed()

    def view_changed(self) -> None:
        """Show the rows again, sorted and filtered anew."""
        raise NotImplementedError
