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
        Binding("d", "sweep('depth')", "Depth sweep"),
        Binding("c", "sweep('concurrency')", "Concurrency"),
        Binding("k", "sweep('quality')", "Quality"),
        Binding("l", "sweep('llama-bench')", "llama-bench"),
        Binding("m", "mark", "Mark to compare"),
        Binding("h", "champions", "Champions"),
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
        self.marked: int | None = None

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
        run_id = ResultStore().add_api(result, engine=self.server.engine)
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

    def action_sweep(self, kind: str) -> None:
        if self.running:
            self.notify("a benchmark is running (esc cancels it)", timeout=3)
            return
        self.cancel.clear()
        self.running = True
        self.query_one("#bench-summary", Static).update(f"{kind} …")
        self._sweep(kind)

    @work(thread=True, exclusive=True, group="bench")
    def _sweep(self, kind: str) -> None:
        from sparktop.bench import api

        post = self.app._post  # type: ignore[attr-defined]
        base, name = self.server.url or "", self.server.name
        try:
            if kind == "depth":
                for depth, result in api.depth_sweep(
                    base, name, prompt_tokens=self.prompt, gen_tokens=self.gen,
                    cancel=self.cancel,
                ):  # fmt: skip
                    s = result.summary()
                    pp, tg = s["prefill_tps"]["median"], s["decode_tps"]["median"]
                    post(self._log, f"depth {depth:>6}: prefill {pp:.1f} t/s, decode {tg:.1f} t/s")
            elif kind == "concurrency":
                for row in api.concurrency_sweep(base, name, cancel=self.cancel):
                    post(self._log, f"{row['streams']} streams: {row['aggregate_decode_tps']:.1f}"
                                    f" t/s aggregate ({row['completed']} completed)")  # fmt: skip
            elif kind == "quality":
                from sparktop.bench.quality import quality_smoke

                for item in quality_smoke(base, name):
                    verdict = "ok " if item["ok"] else "BAD " + "; ".join(item["problems"])
                    post(self._log, f"{item['mode']}: {verdict}")
                    post(self._log, "   " + item["answer"].strip().replace("\n", " ")[:200])
            elif kind == "llama-bench":
                self._llama_bench(post)
        except (api.BenchError, api.BenchCancelled, RuntimeError) as exc:
            post(self._finished, f"{kind}: {exc or 'cancelled'}")
            return
        post(self._finished, f"{kind}: done")

    def _llama_bench(self, post) -> None:
        from sparktop.bench.llama_bench import run_llama_bench
        from sparktop.catalog.files import model_path

        app = self.app
        entry = app.control.catalog.get(self.server.catalog_name or "")  # type: ignore[attr-defined]
        path = model_path(entry) if entry is not None else None
        if path is None or not path.is_file():
            raise RuntimeError("llama-bench needs a catalog model whose GGUF is on this machine")
        post(self._log, f"llama-bench -p {self.prompt} -n {self.gen} -r {self.reps} {path}")
        for row in run_llama_bench(path, prompt=self.prompt, gen=self.gen,
                                   repetitions=self.reps, cancel=self.cancel):  # fmt: skip
            post(
                self._log, f"llama-bench {row.test:>12}: {row.avg_ts:.1f} ± {row.stddev_ts:.1f} t/s"
            )

    def action_mark(self) -> None:
        """Mark a history row; marking a second one shows the two side by side with deltas."""
        from sparktop.bench.store import ResultStore
        from sparktop.ui.screens.dialogs import TextScreen

        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        run_id = int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value or 0)
        if self.marked is None or self.marked == run_id:
            self.marked = run_id
            self.notify(f"run {run_id} marked: m on another run compares them", timeout=4)
            return
        comparison = ResultStore().compare(self.marked, run_id)
        self.marked = None
        a, b = comparison["a"], comparison["b"]
        lines = [f"{'':<22}{'run ' + str(a['id']):>16}{'run ' + str(b['id']):>16}{'Δ':>18}"]
        for key in ("model", "engine", "prompt_tokens", "gen_tokens", "prefill_tps",
                    "decode_tps", "ttft_s", "server_decode_tps", "hardware"):  # fmt: skip
            va, vb = a.get(key), b.get(key)
            delta = comparison["delta"].get(key)
            d = (
                f"{delta['abs']:+.2f} ({delta['pct']:+.1f}%)"
                if delta and delta["pct"] is not None
                else ""
            )
            fa = f"{va:.2f}" if isinstance(va, float) else str(va)
            fb = f"{vb:.2f}" if isinstance(vb, float) else str(vb)
            lines.append(f"{key:<22}{fa:>16}{fb:>16}{d:>18}")
        self.app.push_screen(TextScreen(f"run {a['id']} vs run {b['id']}", "\n".join(lines)))

    def action_champions(self) -> None:
        from sparktop.bench.store import ResultStore
        from sparktop.ui.screens.dialogs import TextScreen

        config = self.app.config  # type: ignore[attr-defined]
        champions = ResultStore().champions()
        lines = []
        for mode in config.bench_modes:
            run = champions.get(mode)
            rule = config.champion_rule(mode).describe()
            if run is None:
                lines.append(f"{mode:<10} –   (rule: {rule})")
            else:
                lines.append(f"{mode:<10} run {run['id']} {run['model']}: pp "
                             f"{run['prefill_tps'] or 0:.1f}, tg {run['decode_tps'] or 0:.1f} t/s"
                             f"   (rule: {rule})")  # fmt: skip
        lines += ["", "promote a run: sparktop results --promote RUN --mode MODE"]
        self.app.push_screen(TextScreen("champions per mode", "\n".join(lines)))
