"""`b`: benchmark the selected server (pp/tg through the API), live, cancellable, kept."""

from __future__ import annotations

import threading
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, Static

from sparktop.servers.info import ServerInfo

HISTORY_COLUMNS = ("RUN", "WHEN", "MODEL", "PROMPT", "GEN", "PP t/s", "TG t/s", "TTFT")


class BenchScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_or_close", "Cancel / back"),
        Binding("r", "rerun", "Run again"),
    ]
    DEFAULT_CSS = """
    BenchScreen #bench-title { height: auto; padding: 0 1; text-style: bold; }
    BenchScreen Log { height: 1fr; border: round $primary 60%; }
    BenchScreen #bench-summary { height: auto; padding: 0 1; }
    BenchScreen DataTable { height: 1fr; border: round $primary 60%; }
    """

    def __init__(self, server: ServerInfo, *, prompt: int = 512, gen: int = 128, reps: int = 3):
        super().__init__()
        self.server = server
        self.prompt, self.gen, self.reps = prompt, gen, reps
        self.cancel = threading.Event()
        self.running = False
        self.result = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"bench {self.server.name} ({self.server.engine}) at {self.server.url}: "
                f"pp{self.prompt} / tg{self.gen} × {self.reps}, streaming /v1/completions",
                id="bench-title",
            )
            yield Log(id="bench-log", max_lines=500)
            yield Static("", id="bench-summary")
            yield DataTable(id="bench-history", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in HISTORY_COLUMNS:
            table.add_column(column, key=column)
        self._load_history()
        self._start()

    def _log(self, text: str) -> None:
        self.query_one(Log).write_line(text)

    def _start(self) -> None:
        self.cancel.clear()
        self.running = True
        self.query_one("#bench-summary", Static).update("running …")
        self._run()

    @work(thread=True, exclusive=True, group="bench")
    def _run(self) -> None:
        from sparktop.bench.api import BenchCancelled, BenchError, run_api_bench
        from sparktop.bench.store import ResultStore

        post = self.app._post  # type: ignore[attr-defined]

        def progress(step: str, result) -> None:
            text = f"{step}"
            if result.samples:
                last = result.samples[-1]
                text += (
                    f"   last: TTFT {last.ttft_s * 1000:.0f} ms,"
                    f" prefill {last.prefill_tps:.1f} t/s, decode {last.decode_tps:.1f} t/s"
                )
                if last.server_decode_tps:
                    text += f" (server {last.server_decode_tps:.1f})"
            post(self._log, text)

        assert self.server.url is not None
        try:
            result = run_api_bench(self.server.url, self.server.name, prompt_tokens=self.prompt,
                                   gen_tokens=self.gen, repetitions=self.reps,
                                   progress=progress, cancel=self.cancel)  # fmt: skip
        except BenchCancelled:
            post(self._finished, "cancelled: the request was closed, the server is idle again")
            return
        except BenchError as exc:
            post(self._finished, f"failed: {exc}")
            return
        summary = result.summary()
        run_id = ResultStore().add(
            model=self.server.name, engine=self.server.engine, kind="api",
            prompt_tokens=result.prompt_tokens, gen_tokens=result.gen_tokens,
            repetitions=len(result.samples), prefill_tps=summary["prefill_tps"]["median"],
            decode_tps=summary["decode_tps"]["median"], ttft_s=summary["ttft_s"]["median"],
            server_prefill_tps=summary["server_prefill_tps"]["median"],
            server_decode_tps=summary["server_decode_tps"]["median"], detail=result.to_json(),
        )  # fmt: skip
        self.result = result

        def line(name: str, key: str, unit: str) -> str:
            stat = summary[key]
            if stat["median"] is None:
                return f"{name}: –"
            return f"{name}: {stat['median']:.1f} ± {stat['stdev']:.1f} {unit}"

        text = "   ".join(
            [
                line("prefill", "prefill_tps", "t/s"),
                line("decode", "decode_tps", "t/s"),
                line("server decode", "server_decode_tps", "t/s"),
                f"TTFT {summary['ttft_s']['median'] * 1000:.0f} ms",
                f"kept as run {run_id}",
            ]
        )
        post(self._finished, text)

    def _finished(self, text: str) -> None:
        self.running = False
        self.query_one("#bench-summary", Static).update(text)
        self._log(text)
        self._load_history()

    def _load_history(self) -> None:
        import time

        from sparktop.bench.store import ResultStore

        table = self.query_one(DataTable)
        table.clear()
        for row in ResultStore().history(limit=50):
            when = time.strftime("%m-%d %H:%M", time.localtime(row["time"]))
            pp = f"{row['prefill_tps']:.1f}" if row["prefill_tps"] else "–"
            tg = f"{row['decode_tps']:.1f}" if row["decode_tps"] else "–"
            ttft = f"{row['ttft_s'] * 1000:.0f} ms" if row["ttft_s"] else "–"
            table.add_row(str(row["id"]), when, row["model"], str(row["prompt_tokens"]),
                          str(row["gen_tokens"]), pp, tg, ttft, key=str(row["id"]))  # fmt: skip

    def action_cancel_or_close(self) -> None:
        if self.running:
            self.cancel.set()
            self._log("cancelling …")
        else:
            self.app.pop_screen()

    def action_rerun(self) -> None:
        if not self.running:
            self._start()
