"""The servers table: every inference server on the box, one row each, updated in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.message import Message

from sparktop.servers.info import (
    CRASHED,
    ERROR,
    LOADING,
    NOT_RESPONDING,
    READY,
    STARTING,
    ServerInfo,
)
from sparktop.servers.rows import COLUMNS, CONTAINER, columns_for, server_row
from sparktop.ui.widgets.fit_columns import SCROLLBAR, content_widths, fit_columns
from sparktop.ui.widgets.live_table import LiveTable
from sparktop.ui.widgets.row_table import SORTED, SortFilter

HEALTH_STYLE = {
    READY: "bold $success",
    LOADING: "$warning",
    STARTING: "$warning",
    NOT_RESPONDING: "bold $error",
    ERROR: "bold $error",
    CRASHED: "bold $error",
}


SORT_KEYS: dict[str, tuple[Callable[[ServerInfo], Any], bool]] = {
    "NAME": (lambda s: s.name.lower(), False),
    "CPU%": (lambda s: s.cpu_percent or 0.0, True),
    "MEMORY": (lambda s: (s.rss_bytes or 0) + (s.gpu_bytes or 0), True),
    "TG t/s": (lambda s: s.gen_tps or 0.0, True),
    "KV": (lambda s: s.kv_usage or 0.0, True),
    "UP": (lambda s: s.uptime_s or 0.0, True),
}
"""Sort choices after the monitor's own order (by port): key, and largest first."""

IMPORTANCE = ("NAME", "HEALTH", "TG t/s", "KV", "MEMORY", "CPU%", "PORT", "ENGINE", CONTAINER,
              "PP t/s", "RUN/WAIT", "UP", "PROXY", "PID")  # fmt: skip
"""Columns by what a narrow window keeps longest: the first KEEP always (NAME stays at the
left while the rest scroll), PID, PROXY and UP go first."""
KEEP = 4


class ServersTable(SortFilter, LiveTable):
    """Rows keyed by server (pid:port); only changed cells are redrawn. `o` sorts by the
    next of SORTS (figures largest first), `/` keeps the rows containing a text."""

    SORTS: ClassVar[tuple[str, ...]] = ("PORT", *SORT_KEYS)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "details", "Details"),
    ]

    class DetailsRequested(Message):
        """`enter` on a row: show that server in full."""

        def __init__(self, server: ServerInfo) -> None:
            super().__init__()
            self.server = server

    DEFAULT_CSS = """
    ServersTable { height: auto; max-height: 100%; }
    ServersTable.-filtering { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.fixed_columns = 1
        """NAME stays at the left while the other columns scroll."""
        self.servers: dict[str, ServerInfo] = {}
        self._rows: dict[str, tuple[str, ...]] = {}
        self.columns_shown: tuple[str, ...] = COLUMNS
        """The columns on screen: those of `columns_for` that fit the width."""
        self._all: tuple[ServerInfo, ...] = ()
        self._widths: dict[str, int] = {}
        """Widths the columns shown were chosen with; other widths choose anew."""
        self._fitted_for = 0
        """The table width the columns shown were chosen for."""

    def on_mount(self) -> None:
        for column in self.columns_shown:
            self.add_column(column, key=column)
        self.mark_sorted()

    def view_changed(self) -> None:
        self.show(self._all)

    def _ordered(self, servers: tuple[ServerInfo, ...]) -> list[ServerInfo]:
        if self.sort_by not in SORT_KEYS:
            return list(servers)
        key, largest_first = SORT_KEYS[self.sort_by]
        return sorted(servers, key=key, reverse=largest_first)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._fitted_for:  # columns chosen again at every new width
            self.show(self._all, refit=True)

    def _fit(self, columns: tuple[str, ...], rows: dict[str, tuple[str, ...]],
             refit: bool) -> tuple[str, ...]:  # fmt: skip
        """The columns that fit the table's width, chosen again on a resize, when servers
        come or go, or when a column's widest cell grows or shrinks."""
        sort_mark = {self.sort_by: len(SORTED)} if self.sort_index else {}
        widths = content_widths(columns, rows.values(), sort_mark)
        gone = not set(self.columns_shown) <= set(columns)  # CONTAINER went, say
        if not (refit or widths != self._widths or gone or rows.keys() != self._rows.keys()):
            return self.columns_shown
        self._widths = widths
        room = self.size.width - SCROLLBAR
        if room <= 0:  # not laid out yet (or hidden under the summary)
            return columns
        self._fitted_for = self.size.width
        if not self.sort_index:
            return fit_columns(columns, widths, IMPORTANCE, KEEP, room)
        # the column rows are sorted by is kept too, its ▼ on screen (UP at 80 columns)
        first, *rest = (name for name in IMPORTANCE if name != self.sort_by)
        return fit_columns(columns, widths, (first, self.sort_by, *rest), KEEP + 1, room)

    def show(self, servers: tuple[ServerInfo, ...], refit: bool = False) -> None:
        every = columns_for(servers)
        container = CONTAINER in every
        full = {s.key: server_row(s, container) for s in servers}
        columns = self._fit(every, full, refit)
        if columns != self.columns_shown:  # resized, CONTAINER came or went: columns anew
            self.clear(columns=True)
            self._rows.clear()
            self.columns_shown = columns
            self.on_mount()
        self._all = servers
        index = [every.index(name) for name in columns]
        rows = {key: tuple(row[i] for i in index) for key, row in full.items()}
        wanted = {s.key: s for s in self._ordered(servers) if self.matches(full[s.key])}
        for key in list(self._rows):
            if key not in wanted:
                self.remove_row(key)
                del self._rows[key]
        for key in wanted:
            row = rows[key]
            old = self._rows.get(key)
            if old is None:
                self.add_row(*row, key=key)
            elif old != row:
                for column, new, before in zip(columns, row, old, strict=True):
                    if new != before:
                        self.update_cell(key, column, new)
            self._rows[key] = row
        if bool(wanted) != bool(self.servers):
            self.refresh_bindings()  # the row keys come and go with the rows
        self.servers = wanted
        if [row.key.value for row in self.ordered_rows] != list(wanted):
            self._reorder(list(wanted))
        self.fit_widths()  # narrower again when a wide cell went (a crash line, a row)

    def _reorder(self, keys: list[str]) -> None:
        """The rows again in `keys`' order, the cursor staying on its server."""
        selected = self.selected
        self.clear()
        for key in keys:
            self.add_row(*self._rows[key], key=key)
        if selected is not None and selected.key in self.servers:
            self.move_cursor(row=self.get_row_index(selected.key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "details" and self.row_count == 0:
            return False  # no row, no details: not in the footer
        return super().check_action(action, parameters)

    def action_details(self) -> None:
        server = self.selected
        if server is not None:
            self.post_message(self.DetailsRequested(server))

    @property
    def selected(self) -> ServerInfo | None:
        if not self.servers or self.cursor_row < 0 or self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return self.servers.get(key or "")
