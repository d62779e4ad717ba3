"""`m`: the model catalog with disk state and fit verdicts; `s` serves, `e` exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from sparktop.actions import catalog as catalog_actions
from sparktop.catalog.entry import ModelEntry
from sparktop.servers.info import CRASHED
from sparktop.ui import messages as msg
from sparktop.ui.widgets.fit_columns import SCROLLBAR, content_widths, fit_columns
from sparktop.ui.widgets.row_table import RowTable, SortFilter

if TYPE_CHECKING:
    from sparktop.ui.messages import BoxView

COLUMNS = ("MODEL", "RUN", "ENGINE", "QUANT", "PORT", "ON DISK", "NEEDS", "FIT")
RUNNING = "●"
"""In the RUN column: a server of this entry is running (crashed ones excepted)."""
ROW_ACTIONS = frozenset({"serve", "download", "export", "details"})
WIDTHS = {"RUN": 5, "ON DISK": 20, "NEEDS": 10, "FIT": 12}
"""Columns filled in later get fixed widths (a DataTable sizes columns when rows are added)."""
IMPORTANCE = ("MODEL", "ON DISK", "NEEDS", "FIT", "RUN", "PORT", "ENGINE", "QUANT")
"""What a narrow window keeps longest: the first KEEP always (MODEL stays at the left while
the rest scroll)."""
KEEP = 4
REFRESH_S = 2.0
"""How often an open Models screen looks again: RUN from the servers the main view polled
(no I/O), ON DISK / NEEDS / FIT off the UI thread (file stats; a GGUF header is read again
only when its file changed)."""


class CatalogTable(SortFilter):
    """The models, sortable (`o`: catalog order, name, running first, needs, fit) and
    filterable (`/`); the screen fills the rows."""

    SORTS: ClassVar[tuple[str, ...]] = ("catalog order", "MODEL", "RUN", "NEEDS", "FIT")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.fixed_columns = 1

    def on_resize(self, event: Resize) -> None:
        screen = self.screen
        if isinstance(screen, CatalogScreen):
            screen.fit_columns()

    def view_changed(self) -> None:
        screen = self.screen
        if isinstance(screen, CatalogScreen):
            screen.show_rows()


class CatalogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,m", "app.pop_screen", "Back"),
        Binding("s", "serve", "Serve"),
        Binding("d", "download", "Download"),
        Binding("e", "export", "Export"),
        # before the table's own enter (select), which would otherwise take the key
        Binding("enter", "details", "Details", priority=True),
    ]
    DEFAULT_CSS = """
    CatalogScreen #catalog-note { height: auto; color: $text-muted; padding: 0 1; }
    CatalogScreen #catalog-errors { height: auto; color: $error; padding: 0 1; }
    CatalogScreen DataTable { height: 1fr; }
    """

    def __init__(self, box: BoxView) -> None:
        super().__init__()
        self.box = box
        """The main view: the catalog and servers it reads, where the requests go."""
        self.cells: dict[str, list[str]] = {}
        """Each entry's cells (in COLUMNS order), as far as they are known."""
        self.filled: dict[str, catalog_actions.CatalogRow] = {}
        self.columns_shown: tuple[str, ...] = ()
        """The columns that fit the table's width (chosen on a resize and a reload)."""
        self._servers_seen: tuple[object, ...] | None = None
        self._refilling = False

    class RowFilled(Message):
        def __init__(self, row: catalog_actions.CatalogRow) -> None:
            super().__init__()
            self.row = row

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="catalog-errors", markup=False)
            yield CatalogTable(id="catalog-table")
            yield Static(
                "fit = weights + KV cache + engine overhead vs memory available now "
                "(counting servers the switch would stop)",
                id="catalog-note",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one(RowTable).focus()
        self.set_interval(REFRESH_S, self.refresh_rows)

    def refresh_rows(self) -> None:
        """While the screen is open: RUN as the servers now stand, and disk state and fit
        again (a download finished, a server stopped from a shell)."""
        self._show_running()
        if not self._refilling:
            self._fill()

    def _entries_running(self) -> set[str]:
        servers = self.box.servers
        self._servers_seen = servers
        return {s.catalog_name for s in servers if s.health != CRASHED and s.catalog_name}

    def _show_running(self) -> None:
        if self.box.servers is self._servers_seen:
            return
        running = self._entries_running()
        for name in self.cells:
            self._set_cell(name, "RUN", RUNNING if name in running else "")

    def _set_cell(self, name: str, column: str, value: str) -> None:
        cells = self.cells[name]
        if cells[COLUMNS.index(column)] == value:
            return
        cells[COLUMNS.index(column)] = value
        table = self.query_one(CatalogTable)
        if name in table.rows and column in self.columns_shown:
            table.update_cell(name, column, value)

    def fit_columns(self) -> None:
        """Show the columns that fit (all until the table is laid out), rows again."""
        table = self.query_one(CatalogTable)
        widths = {**content_widths(COLUMNS, self.cells.values()), **WIDTHS}
        room = table.size.width - SCROLLBAR
        columns = fit_columns(COLUMNS, widths, IMPORTANCE, KEEP, room) if room > 0 else COLUMNS
        if columns == self.columns_shown:
            return
        self.columns_shown = columns
        table.clear(columns=True)
        for column in columns:
            table.add_column(column, key=column, width=WIDTHS.get(column))
        table.mark_sorted()
        self.show_rows()

    def reload(self) -> None:
        """Show the catalog in use (again, after an edited file was loaded), its problems
        and those of an edit that was not used; the cursor stays on its model."""
        selected = self._selected()
        catalog = self.box.control.catalog
        problems = list(catalog.errors)
        if self.box.catalog_problems:
            problems += ["catalog edit not used (the models below are from before it):",
                         *self.box.catalog_problems]  # fmt: skip
        self.query_one("#catalog-errors", Static).update("\n".join(problems))
        running = self._entries_running()
        self.filled = {}
        self.cells = {
            entry.name: [entry.name, RUNNING if entry.name in running else "", entry.engine,
                         entry.quant or "–", str(entry.serve.port), "…", "…", "…"]
            for entry in catalog
        }  # fmt: skip
        self.columns_shown = ()  # names may be longer now: columns chosen anew
        self.fit_columns()
        self.show_rows(selected.name if selected is not None else None)
        self._fill()

    def show_rows(self, keep: str | None = None) -> None:
        """The entries that pass the filter, in the chosen order; the cursor stays on `keep`
        (by default the selected model)."""
        table = self.query_one(CatalogTable)
        if keep is None:
            selected = self._selected()
            keep = selected.name if selected is not None else None
        names = [name for name, cells in self.cells.items() if table.matches(cells)]
        names = self._sorted(names, table.sort_by)
        table.clear()
        index = [COLUMNS.index(column) for column in self.columns_shown]
        for name in names:
            cells = self.cells[name]
            table.add_row(*(cells[i] for i in index), key=name)
        if keep in names:
            table.move_cursor(row=table.get_row_index(keep))
        self.refresh_bindings()  # the row keys need a row

    def _sorted(self, names: list[str], by: str) -> list[str]:
        if by == "MODEL":
            return sorted(names, key=str.lower)
        if by == "RUN":
            return sorted(names, key=lambda n: self.cells[n][1] != RUNNING)
        if by == "NEEDS":  # largest first; not yet worked out: last
            return sorted(names, key=lambda n: -(self._need(n) or -1))
        if by == "FIT":
            return sorted(names, key=lambda n: self.cells[n][COLUMNS.index("FIT")])
        return names

    def _need(self, name: str) -> int | None:
        row = self.filled.get(name)
        return row.fit.need_bytes if row is not None else None

    @work(thread=True, exclusive=True, group="catalog-fit")
    def _fill(self) -> None:
        """Disk state and fit per entry: file stats and GGUF headers, off the UI thread."""
        self._refilling = True
        try:
            control = self.box.control
            for row in catalog_actions.rows(control, list(control.catalog), self.box.servers):
                self.post_message(self.RowFilled(row))
        finally:
            self._refilling = False

    def on_catalog_screen_row_filled(self, message: RowFilled) -> None:
        row = message.row
        name = row.entry.name
        if name not in self.cells:  # filled for a catalog since reloaded
            return
        self.filled[name] = row
        for column, value in (("ON DISK", row.on_disk), ("NEEDS", row.needs),
                              ("FIT", row.fit.verdict)):  # fmt: skip
            self._set_cell(name, column, value)

    def _selected(self) -> ModelEntry | None:
        table = self.query_one(RowTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.box.control.catalog.get(key or "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The row keys only while there is a row to act on."""
        return action not in ROW_ACTIONS or any(t.row_count for t in self.query(RowTable))

    def action_serve(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.box.post_message(msg.ServeRequested(entry))

    def action_download(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.box.post_message(msg.DownloadRequested(entry))

    def action_export(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.box.post_message(msg.ExportRequested(entry))

    def action_details(self) -> None:
        entry = self._selected()
        if entry is None:
            return
        from sparktop.ui.screens.dialogs import TextScreen

        lines = catalog_actions.details(self.box.control, entry, self.box.servers)
        self.app.push_screen(TextScreen(f"model {entry.name}", "\n".join(lines)))
