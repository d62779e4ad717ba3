"""`f`: every host in one table (this box first); enter shows a host's whole state, and
`s` / `x` / `t` serve, stop and test on it over SSH.

Each host is polled on its own thread (sparktop.fleet.remote.FleetPoller): a dead host
shows *unreachable* with the reason and never delays the other rows. A `prometheus:` entry
adds one row per instance it lists (a stale one shows its last sample's age); its rows are
those of its latest answer: an instance it no longer lists goes, and when Prometheus cannot
be asked one row named after the entry says why in their place.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.data_table import ColumnKey

from sparktop.fleet.describe import describe_status
from sparktop.fleet.hosts import LOCAL, Host
from sparktop.fleet.remote import FleetPoller, HostState, run_action, summary_of
from sparktop.snapshot import Snapshot
from sparktop.ui.messages import ShowText
from sparktop.ui.screens.dialogs import MODAL_CSS, ConfirmScreen, TextScreen
from sparktop.ui.widgets.row_table import RowTable
from sparktop.units import fmt_bytes

COLUMNS = ("HOST", "STATE", "MEMORY", "GPUS", "SERVERS", "DOWNLOADS", "VIA")
STATE_WIDTH = 26
"""Cells of the STATE column: it stays in sight at 80 columns; a longer reason ends in …
(the host's detail below the table shows it whole)."""
WIDE_STATE_WIDTH = 72
"""The STATE column from WIDE_SCREEN columns on, where a whole reason usually fits."""
WIDE_SCREEN = 150
LocalStatus = Callable[[], "dict[str, Any] | Snapshot | None"]


def app_local_status(app: Any) -> dict[str, Any] | None:
    """This box's status document, from the main view's Snapshot producer."""
    snapshot = app.producer.current()
    return snapshot.to_json() if snapshot is not None else None


def stale_or_unreachable(state: HostState) -> str:
    """A row without figures: a Prometheus instance's last sample age, or why unreachable."""
    reason = state.reason or "?"
    return reason if reason.startswith("stale:") else f"unreachable: {reason}"


class PickScreen(ModalScreen["str | None"]):
    """Choose one of a few names (a catalog entry to serve, a server to stop or test)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="PickScreen")
        + """
    PickScreen OptionList { height: auto; max-height: 20; }
    """
    )

    def __init__(self, title: str, choices: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield OptionList(*self.choices)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index])


class FleetScreen(Screen[None]):
    """One row per host; `local` is this box (from `local_status`), the others are polled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f", "app.pop_screen", "Back"),
        Binding("s", "remote('serve')", "Serve there"),
        Binding("x", "remote('stop')", "Stop there"),
        Binding("t", "remote('test')", "Test there"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    FleetScreen #fleet-table { height: auto; max-height: 14; border: round $primary 60%; }
    FleetScreen #fleet-detail-box { height: 1fr; border: round $primary 60%; padding: 0 1; }
    FleetScreen #fleet-note { height: auto; color: $text-muted; padding: 0 1; }
    """

    def __init__(
        self,
        hosts: Sequence[Host],
        local_status: LocalStatus,
        *,
        interval: float = 5.0,
        catalog_names: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.hosts = {h.name: h for h in hosts}
        self.local_status = local_status
        self.interval = interval
        self.catalog_names = catalog_names
        self.states: dict[str, HostState] = {}
        self.owned: dict[str, list[str]] = {}
        """A configured host's name → the rows its latest poll gave (a Prometheus's many)."""
        self.row_names: dict[tuple[str, str], str] = {}
        """(configured host, name it polled) → its row: kept while that host lists it, so a
        name never moves between two Prometheus entries that list the same instance."""
        self.shown = LOCAL
        """The host whose whole state the detail box shows."""
        self.poller = FleetPoller(hosts, self._polled, interval=interval)
        self.stopped = threading.Event()
        self.local_wake = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield RowTable(id="fleet-table")
            yield Static(
                "enter: show that host · s/x/t: serve/stop/test there (over SSH) · r: refresh",
                id="fleet-note",
            )
            with VerticalScroll(id="fleet-detail-box"):
                yield Static("", id="fleet-detail", markup=False)
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        table = self.query_one(DataTable)
        width = WIDE_STATE_WIDTH if event.size.width >= WIDE_SCREEN else STATE_WIDTH
        column = table.columns.get(ColumnKey("STATE"))
        if column is not None and column.width != width:
            column.width = width
            table.refresh(layout=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column, width=STATE_WIDTH if column == "STATE" else None)
        for name in [LOCAL, *self.hosts]:
            host = self.hosts.get(name)
            if host is not None and host.transport == "prometheus":
                continue  # its instances come as rows of their own
            via = "this box" if host is None else host.address
            table.add_row(name, "polling…", "…", "…", "…", "…", via, key=name)
        table.focus()
        self._show_detail()
        self.poller.start()
        threading.Thread(target=self._local_loop, name="fleet-local", daemon=True).start()

    def on_unmount(self) -> None:
        self.stopped.set()
        self.local_wake.set()
        self.poller.stop()

    # -- polling (threads) ---------------------------------------------------------------

    class HostPolled(Message):
        """A configured host's states from a poller thread (one, or a Prometheus's
        instances); a newer poll of the same host replaces it."""

        def __init__(self, host: str, states: list[HostState]) -> None:
            super().__init__()
            self.host = host
            self.states = states

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, FleetScreen.HostPolled) and message.host == self.host

    def _from_thread(self, state: HostState) -> None:
        if not self.stopped.is_set():
            self.post_message(self.HostPolled(LOCAL, [state]))

    def _polled(self, host: Host, states: list[HostState]) -> None:
        if not self.stopped.is_set():
            self.post_message(self.HostPolled(host.name, states))

    def on_fleet_screen_host_polled(self, message: HostPolled) -> None:
        if not self.is_mounted:
            return
        rows = []
        for state in message.states:
            row = self._row_name(message.host, state.name)
            rows.append(row)
            self._set_state(dataclasses.replace(state, name=row))
        table = self.query_one(DataTable)
        for gone in set(self.owned.get(message.host, ())) - set(rows):
            table.remove_row(gone)
            self.states.pop(gone, None)
            if self.shown == gone:
                self.show_host(LOCAL)
        self.owned[message.host] = rows
        listed = {(message.host, state.name) for state in message.states}
        for key in [k for k in self.row_names if k[0] == message.host and k not in listed]:
            del self.row_names[key]

    def _row_name(self, host: str, name: str) -> str:
        """The row for `name` polled through configured host `host`: its own name, unless
        that is this box, a configured host or another Prometheus's row (then "name (host)")."""
        if name == host:
            return name
        row = self.row_names.get((host, name))
        if row is None:
            taken = name == LOCAL or name in self.hosts or name in self.row_names.values()
            row = self.row_names[(host, name)] = f"{name} ({host})" if taken else name
        return row

    def _local_loop(self) -> None:
        import time

        while not self.stopped.is_set():
            started = time.monotonic()
            status = None
            try:
                status = self.local_status()
                if isinstance(status, Snapshot):
                    status = status.to_json()
                if status is None:
                    state = HostState(
                        LOCAL, False, "no snapshot yet", None, time.time(), transport="local"
                    )
                else:
                    state = HostState(
                        LOCAL, True, None, status, time.time(), time.monotonic() - started, "local"
                    )
            except Exception as exc:  # a probe bug shows in the row, the loop keeps going
                state = HostState(LOCAL, False, str(exc), None, time.time(), transport="local")
            self._from_thread(state)
            wait = 0.5 if status is None else self.interval
            self.local_wake.wait(wait)
            self.local_wake.clear()

    # -- drawing (UI thread) ---------------------------------------------------------------

    def on_show_text(self, message: ShowText) -> None:
        self.app.push_screen(TextScreen(message.title, message.text))
        message.stop()

    def _set_state(self, state: HostState) -> None:
        if not self.is_mounted:
            return
        self.states[state.name] = state
        table = self.query_one(DataTable)
        if state.name not in table.rows:  # an instance a Prometheus lists
            table.add_row(state.name, "", "", "", "", "", state.address, key=state.name)
        if state.reachable and state.status is not None:
            s = summary_of(state.status)
            memory = "?"
            if s.memory_total_bytes:
                memory = f"{fmt_bytes(s.memory_used_bytes)}/{fmt_bytes(s.memory_total_bytes)}"
            cells = {
                "MEMORY": memory,
                "GPUS": ", ".join(s.gpus) or "none",
                "SERVERS": ", ".join(s.servers) or "none",
                "DOWNLOADS": f"{s.downloads_active} active" if s.downloads_total else "none",
                "STATE": f"ok ({s.hostname})",
            }
        else:
            cells = {
                "MEMORY": "–",
                "GPUS": "–",
                "SERVERS": "–",
                "DOWNLOADS": "–",
                "STATE": stale_or_unreachable(state),
            }
        for column, value in cells.items():
            if column == "STATE":
                cell = Text(value, overflow="ellipsis", no_wrap=True)
                table.update_cell(state.name, column, cell)
            else:
                table.update_cell(state.name, column, value, update_width=True)
        if state.name == self.shown:
            self._show_detail()

    def _show_detail(self) -> None:
        name = self.shown
        state = self.states.get(name)
        via = "this box"
        if name != LOCAL:
            via = f"{state.transport} {state.address}" if state else self.hosts[name].address
        box = self.query_one("#fleet-detail-box")
        box.border_title = f"{name} ({via})"
        if state is None:
            text = "polling…"
        elif not state.reachable or state.status is None:
            text = stale_or_unreachable(state)
        else:
            text = "\n".join(describe_status(Snapshot.from_json(state.status)))
        self.query_one("#fleet-detail", Static).update(text)

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        if name is not None:
            self.show_host(name)

    def show_host(self, name: str) -> None:
        """Switch the detail box to host `name` (enter on its row); a row a poll removed
        meanwhile shows this box instead."""
        known = name == LOCAL or name in self.states or name in self.hosts
        self.shown = name if known else LOCAL
        self._show_detail()

    def action_refresh(self) -> None:
        self.poller.refresh()
        self.local_wake.set()

    # -- actions on a host (over SSH) -------------------------------------------------------

    def action_remote(self, verb: str) -> None:
        name = self._selected()
        if name is None:
            return
        if name == LOCAL:
            self.notify("this box: use the main view's keys (esc)", timeout=4)
            return
        host = self.hosts.get(name)
        if host is None or not host.can_act:
            self.notify(f"{name} has no ssh destination: serve/stop/test need SSH", timeout=5)
            return
        if verb == "serve":
            choices = self.catalog_names() if self.catalog_names else []
        else:
            state = self.states.get(name)
            servers = (state.status or {}).get("servers", []) if state else []
            choices = [s.get("name") for s in servers if s.get("name")]
        if not choices:
            what = "catalog entries" if verb == "serve" else f"servers known on {name}"
            self.notify(f"no {what} to {verb}", timeout=4)
            return

        def picked(target: str | None) -> None:
            if target:
                self._confirm(host, verb, target)

        if len(choices) == 1 and verb != "serve":
            picked(choices[0])
        else:
            self.app.push_screen(PickScreen(f"{verb} on {name}", choices), picked)

    def _confirm(self, host: Host, verb: str, target: str) -> None:
        question = {
            "serve": f"Serve {target} on {host.name}? Servers there in the same exclusive "
            "group or on the same port are stopped.",
            "stop": f"Stop {target} on {host.name}?",
            "test": f"Test {target} on {host.name} (health, models, a chat, coherence)?",
        }[verb]

        def answered(yes: bool | None) -> None:
            if yes:
                flags = ["--yes"] if verb in ("serve", "stop") else []
                self.notify(f"{verb} {target} on {host.name}…", timeout=4)
                self.run_worker(
                    lambda: self._run(host, verb, target, flags), thread=True, group="fleet-action"
                )

        self.app.push_screen(ConfirmScreen(f"{verb} on {host.name}", question), answered)

    def _run(self, host: Host, verb: str, target: str, flags: list[str]) -> None:
        result = run_action(host, verb, target, flags)
        if result.reason:
            text = f"{verb} {target} on {host.name} failed: {result.reason}\n\n{result.output}"
        else:
            status = "ok" if result.ok else f"failed (exit {result.returncode})"
            text = f"{verb} {target} on {host.name}: {status}\n\n{result.output}"
        self.post_message(ShowText(f"{verb} {target} on {host.name}", text))
        self.poller.refresh()
