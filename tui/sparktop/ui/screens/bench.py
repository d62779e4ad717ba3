"""`b`: benchmark the selected server (pp/tg through the API), live, cancellable, kept."""

from __future__ import annotations

import threading
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, Static

from sparktop.actions import ActionError, Cancelled, Event
from sparktop.actions import bench as bench_actions
from sparktop.control import Control
from sparktop.servers.info import ServerInfo
from sparktop.ui.widgets.row_table import RowTable


class BenchScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_or_close", "Cancel / back"),
        Binding("r", "rerun", "Run again"),
        Binding("d", "sweep('depth')", "Depth sweep"),
        Binding("c", "sweep('concurrency')", "Concurrency"),
        Binding("a", "sweep('quality')", "Quality (answers)"),  # k: row up in the history
        Binding("l", "sweep('llama-bench')", "llama-bench"),
        Binding("m", "mark", "Mark to compare"),
        Binding("h", "champions", "Champions"),
    ]
    AUTO_FOCUS = "#bench-history"
    """The kept runs take the keys from the start: ↑/↓/j/k move the row `m` marks."""
    DEFAULT_CSS = """
    BenchScreen #bench-title { height: auto; padding: 0 1; text-style: bold; }
    BenchScreen Log { height: 1fr; border: round $primary 60%; }
    BenchScreen #bench-summary { height: auto; padding: 0 1; }
    BenchScreen DataTable { height: 1fr; border: round $primary 60%; }
    """

    def __init__(self, server: ServerInfo, control: Control, *, prompt: int = 512,
                 gen: int = 128, reps: int = 3) -> None:  # fmt: skip
        super().__init__()
        self.server = server
        self.control = control
        self.prompt, self.gen, self.reps = prompt, gen, reps
        self.cancel = threading.Event()
        self.running = False
        self.outcome: bench_actions.BenchOutcome | None = None
        self.marked: int | None = None

    @property
    def options(self) -> bench_actions.BenchOptions:
        """What `r` runs: pp/tg through the API with this screen's lengths, scaled down to a
        server whose context is smaller (the report line says so)."""
        modes = tuple(self.control.config.bench_modes)
        return bench_actions.BenchOptions(self.prompt, self.gen, self.reps, modes=modes,
                                          fit_context=True)  # fmt: skip

    class Logged(Message):
        """A line for the log, from the benchmark's worker."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Ended(Message):
        """The run ended: its summary line (or why it failed)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"bench {self.server.name} ({self.server.engine}) at {self.server.url}: "
                f"pp{self.prompt} / tg{self.gen} × {self.reps}, streaming /v1/completions",
                id="bench-title",
            )
            yield Log(id="bench-log", max_lines=500)
            yield Static("", id="bench-summary")
            yield RowTable(id="bench-history")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in bench_actions.HISTORY_COLUMNS:
            table.add_column(column, key=column)
        self._load_history()
        self._start(self.options, "running …")

    def _start(self, options: bench_actions.BenchOptions, label: str) -> None:
        self.cancel.clear()
        self.running = True
        self.query_one("#bench-summary", Static).update(label)
        self._run(options)

    @work(thread=True, exclusive=True, group="bench")
    def _run(self, options: bench_actions.BenchOptions) -> None:
        """The same action `sparktop bench` runs; the run is kept with the same fields."""

        def report(event: Event) -> None:
            self.post_message(self.Logged(event.message))

        try:
            target = bench_actions.target_of(self.control, self.server)
            outcome = bench_actions.bench(self.control, target, options, report=report,
                                          cancel=self.cancel)  # fmt: skip
        except Cancelled as exc:
            self.post_message(self.Ended(str(exc)))
            return
        except ActionError as exc:
            prefix = "failed" if options.api else f"{options.kind} failed"
            self.post_message(self.Ended(f"{prefix}: {exc}"))
            return
        self.outcome = outcome
        self.post_message(self.Ended(outcome.summary_line()))

    def on_bench_screen_logged(self, message: Logged) -> None:
        self.query_one(Log).write_line(message.text)

    def on_bench_screen_ended(self, message: Ended) -> None:
        self.running = False
        self.query_one("#bench-summary", Static).update(message.text)
        self.query_one(Log).write_line(message.text)
        self._load_history()

    def _load_history(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in bench_actions.history_rows(bench_actions.open_store(), limit=50):
            table.add_row(*bench_actions.history_cells(row), key=str(row["id"]))

    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
            self.query_one(Log).write_line("cancelling …")
        else:
            self.app.pop_screen()

    def action_rerun(self) -> None:
        if not self.running:
            self._start(self.options, "running …")

    def action_sweep(self, kind: str) -> None:
        if self.running:
            self.notify("a benchmark is running (esc cancels it)", timeout=3)
            return
        self._start(bench_actions.BenchOptions.sweep(kind, self.options), f"{kind} …")

    def action_mark(self) -> None:
        """Mark a history row (A); marking a second one (B) shows the two side by side with
        the deltas of B against A."""
        from sparktop.ui.screens.dialogs import TextScreen

        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        run_id = int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value or 0)
        if self.marked is None or self.marked == run_id:
            self.marked = run_id
            self.notify(f"run {run_id} is A: m on another run (B) compares them", timeout=4)
            return
        marked, self.marked = self.marked, None
        try:
            title, lines = bench_actions.compare_lines(bench_actions.open_store(), marked, run_id)
        except ActionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.push_screen(TextScreen(title, "\n".join(lines)))

    def action_champions(self) -> None:
        from sparktop.ui.screens.dialogs import TextScreen

        store, config = bench_actions.open_store(), self.control.config
        lines = bench_actions.champion_lines(store, config, with_rules=True)
        lines += ["", "promote a run: sparktop results --promote RUN --mode MODE"]
        self.app.push_screen(TextScreen("champions per mode", "\n".join(lines)))
