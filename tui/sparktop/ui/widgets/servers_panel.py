"""The servers table: every inference server on the box, one row each, updated in place."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
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
from sparktop.ui.widgets.live_table import LiveTable

HEALTH_STYLE = {
    READY: "bold $success",
    LOADING: "$warning",
    STARTING: "$warning",
    NOT_RESPONDING: "bold $error",
    ERROR: "bold $error",
    CRASHED: "bold $error",
}


class ServersTable(LiveTable):
    """Rows keyed by server (pid:port); only changed cells are redrawn."""

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
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.servers: dict[str, ServerInfo] = {}
        self._rows: dict[str, tuple[str, ...]] = {}
        self.columns_shown: tuple[str, ...] = COLUMNS

    def on_mount(self) -> None:
        for column in self.columns_shown:
            self.add_column(column, key=column)

    def show(self, servers: tuple[ServerInfo, ...]) -> None:
        columns = columns_for(servers)
        if columns != self.columns_shown:  # CONTAINER comes or goes: the columns anew
            self.clear(columns=True)
            self._rows.clear()
            self.columns_shown = columns
            self.on_mount()
        wanted = {s.key: s for s in servers}
        for key in list(self._rows):
            if key not in wanted:
                self.remove_row(key)
                del self._rows[key]
        for key, server in wanted.items():
            row = server_row(server, CONTAINER in columns)
            old = self._rows.get(key)
            if old is None:
                self.add_row(*row, key=key)
            elif old != row:
                for column, new, before in zip(columns, row, old, strict=True):
                    if new != before:
                        self.update_cell(key, column, new)
            self._rows[key] = row
        self.servers = wanted

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
