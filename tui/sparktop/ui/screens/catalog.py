"""`m`: the model catalog with disk state and fit verdicts; `s` serves, `e` exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.files import disk_state
from sparktop.units import fmt_bytes

if TYPE_CHECKING:
    from sparktop.ui.app import SparktopApp

GIB = 1024**3
COLUMNS = ("MODEL", "ENGINE", "QUANT", "PORT", "ON DISK", "NEEDS", "FIT")
WIDTHS = {"ON DISK": 20, "NEEDS": 10, "FIT": 12}
"""Columns filled in later get fixed widths (a DataTable sizes columns when rows are added)."""


class CatalogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,m", "app.pop_screen", "Back"),
        Binding("s", "serve", "Serve"),
        Binding("d", "download", "Download"),
        Binding("e", "export", "Export"),
        Binding("enter", "details", "Details"),
    ]
    DEFAULT_CSS = """
    CatalogScreen #catalog-note { height: auto; color: $text-muted; padding: 0 1; }
    CatalogScreen #catalog-errors { height: auto; color: $error; padding: 0 1; }
    CatalogScreen DataTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="catalog-errors")
            yield DataTable(cursor_type="row", id="catalog-table")
            yield Static(
                "fit = weights + KV cache + engine overhead vs memory available now "
                "(counting servers the switch would stop)",
                id="catalog-note",
            )
        yield Footer()

    @property
    def sparktop(self) -> SparktopApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column, width=WIDTHS.get(column))
        errors = self.sparktop.control.catalog.errors
        self.query_one("#catalog-errors", Static).update("\n".join(errors))
        for entry in self.sparktop.control.catalog:
            table.add_row(entry.name, entry.engine, entry.quant or "–", str(entry.serve.port),
                          "…", "…", "…", key=entry.name)  # fmt: skip
        table.focus()
        self._fill()

    @work(thread=True, exclusive=True, group="catalog-fit")
    def _fill(self) -> None:
        """Disk state and fit per entry: file stats and GGUF headers, off the UI thread."""
        control = self.sparktop.control
        servers = self.sparktop.servers
        for entry in list(control.catalog):
            disk = disk_state(entry)
            fit = control.fit(entry, servers)
            on_disk = disk.label
            if disk.files or disk.partial_bytes:
                on_disk += f" {fmt_bytes(disk.present_bytes + disk.partial_bytes)}"
            need = f"{fit.need_bytes / GIB:.1f} GiB" if fit.need_bytes else "?"
            self.app.call_from_thread(self._set, entry.name, on_disk, need, fit.verdict)

    def _set(self, name: str, on_disk: str, need: str, verdict: str) -> None:
        table = self.query_one(DataTable)
        table.update_cell(name, "ON DISK", on_disk)
        table.update_cell(name, "NEEDS", need)
        table.update_cell(name, "FIT", verdict)

    def _selected(self) -> ModelEntry | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.sparktop.control.catalog.get(key or "")

    def action_serve(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.sparktop.start_serve(entry)

    def action_download(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.sparktop.start_download(entry)

    def action_export(self) -> None:
        entry = self._selected()
        if entry is not None:
            self.sparktop.show_export(entry)

    def action_details(self) -> None:
        entry = self._selected()
        if entry is None:
            return
        from sparktop.servers.supervisor import ServeError, build_argv
        from sparktop.ui.screens.dialogs import TextScreen

        fit = self.sparktop.control.fit(entry, self.sparktop.servers)
        try:
            argv = " ".join(build_argv(entry, self.sparktop.control.config.engine_binaries))
        except ServeError as exc:
            argv = f"(cannot build: {exc})"
        lines = [
            f"{entry.name} — {entry.description}",
            f"engine {entry.engine}, quant {entry.quant or '?'}, repo {entry.repo or '–'}",
            f"served as {entry.serve.served_name} on {entry.serve.host}:{entry.serve.port}"
            + (f", proxy {entry.serve.proxy.port}" if entry.serve.proxy else ""),
            f"exclusive group: {entry.serve.exclusive or '–'}",
            f"local dir: {entry.local_dir or '–'}",
            "",
            f"fit: {fit.summary()}",
        ]
        for need in fit.needs:
            lines.append(
                f"  weights {fmt_bytes(need.weights_bytes)} ({need.weights_source}); "
                f"KV cache {fmt_bytes(need.kv_bytes)} ({need.kv_source}); "
                f"overhead {fmt_bytes(need.overhead_bytes)}"
            )
        lines += [f"  note: {n}" for n in fit.notes]
        for speed in entry.speeds:
            lines.append(
                f"known speed on {speed.hardware}: "
                f"pp {speed.prompt_tps} t/s, tg {speed.gen_tps} t/s"
            )
        lines += ["", "command:", argv, "", f"defined at {entry.source}"]
        self.app.push_screen(TextScreen(f"model {entry.name}", "\n".join(lines)))
