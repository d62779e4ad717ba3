"""Benchmarks of served models, written once: API pp/tg, depth and concurrency sweeps,
quality prompts, llama-bench, the overnight queue, and the kept results (history, compare,
champions, promote).

Every run either face makes is kept with the same fields: model, quant, engine, serve
flags, host, hardware (the store adds the last two) and the whole result as JSON.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sparktop.actions.errors import BAD_INPUT, ActionError, Cancelled
from sparktop.actions.events import FAILED, Event, Report, quiet
from sparktop.actions.servers import base_of, plan_serve, ready, resolve_entry, resolve_server
from sparktop.actions.servers import serve as serve_entry
from sparktop.bench import tables
from sparktop.catalog.entry import ModelEntry
from sparktop.control import Control
from sparktop.servers.info import ServerInfo

SWEEPS = ("depth", "concurrency", "quality", "llama-bench")
HISTORY_COLUMNS = tables.HISTORY_COLUMNS
history_cells = tables.history_cells
"""The kept runs as both faces list them (`sparktop results`, the bench screen's table)."""


@dataclass(frozen=True)
class BenchTarget:
    """What is benchmarked: a server's base URL and model id, and what the catalog knows."""

    base: str
    model: str
    engine: str | None = None
    entry: ModelEntry | None = None
    model_file: Path | None = None
    pid: int | None = None
    """The server's process: llama-bench is looked for beside its binary."""
    engines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """config.yaml `engines:` (llama-bench is looked for beside a configured llama-server)."""

    @property
    def metrics(self) -> Any:
        """The engine's /metrics names (its own figures for vLLM); None: engine unknown."""
        if self.engine is None:
            return None
        from sparktop.engines import adapter

        return adapter(self.engine).metrics

    @property
    def quant(self) -> str | None:
        return self.entry.quant if self.entry else None

    @property
    def serve_flags(self) -> str | None:
        return " ".join(self.entry.serve.args) if self.entry else None


def target_of(control: Control, target: str | ServerInfo) -> BenchTarget:
    """A served model by name, port, PID, URL or a server row; it must be ready."""
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        from sparktop.servers.http import get

        base = base_of(target)
        models = get(base + "/v1/models", timeout=10).json() or {}
        ids = [m.get("id") for m in models.get("data") or [] if isinstance(m, dict)]
        if not ids:
            raise ActionError(f"{base} lists no model at /v1/models")
        return BenchTarget(base, str(ids[0]))
    server = target if isinstance(target, ServerInfo) else resolve_server(control, target)
    ready(server)
    assert server.url is not None
    entry = control.catalog.get(server.catalog_name or "")
    model_file = None
    if entry is not None:
        from sparktop.catalog.files import model_path

        model_file = model_path(entry)
    return BenchTarget(server.url, server.name, server.engine, entry, model_file, server.pid,
                       dict(control.config.engine_binaries))  # fmt: skip


@dataclass(frozen=True)
class BenchOptions:
    prompt: int = 512
    gen: int = 128
    reps: int = 3
    api: bool = True
    """The pp/tg run through the API (the TUI's sweep keys run a sweep alone)."""
    llama_bench: bool = False
    depths: bool = False
    concurrency: bool = False
    quality: bool = False
    modes: tuple[str, ...] = ()
    """Quality prompts of these modes (config bench.modes)."""
    save: bool = True
    fit_context: bool = False
    """Scale prompt and generation down to the server's context instead of refusing (the
    TUI's `b`, which offers no choice of lengths)."""

    def check(self) -> None:
        """Refuse lengths that make no sense (a run of 0 repetitions measures nothing)."""
        for what, flag, value in (("prompt tokens", "--prompt", self.prompt),
                                  ("generated tokens", "--gen", self.gen),
                                  ("repetitions", "--reps", self.reps)):  # fmt: skip
            if value < 1:
                raise ActionError(f"{what} ({flag}) must be at least 1, got {value}",
                                  code=BAD_INPUT)  # fmt: skip

    @classmethod
    def sweep(cls, kind: str, base: BenchOptions | None = None) -> BenchOptions:
        """One sweep alone (`d`, `c`, `k`, `l` in the TUI)."""
        if kind not in SWEEPS:
            raise ActionError(f"unknown sweep {kind!r} (one of {', '.join(SWEEPS)})")
        base = base or cls()
        flag = {"depth": "depths", "llama-bench": "llama_bench"}.get(kind, kind)
        return replace(base, api=False, **{flag: True})

    @property
    def kind(self) -> str:
        """What the kept run is called in the history (`api`, or the sweep run alone)."""
        if self.api:
            return "api"
        return next(k for k, on in zip(SWEEPS, self._sweeps(), strict=True) if on)

    def _sweeps(self) -> tuple[bool, ...]:
        return (self.depths, self.concurrency, self.quality, self.llama_bench)


@dataclass
class BenchOutcome:
    target: BenchTarget
    options: BenchOptions
    doc: dict[str, Any] = field(default_factory=dict)
    """Everything measured (what `--json` prints and the store keeps as detail)."""
    result: Any = None
    """The API run (sparktop.bench.api.ApiResult), None for a sweep alone."""
    llama_rows: list[Any] = field(default_factory=list)
    run_id: int | None = None
    note: str | None = None
    """The lengths scaled down to the server's context (options.fit_context), or None."""

    @property
    def measured(self) -> bool:
        """Did anything measure: a repetition, a depth, a completed stream, a row, an answer?"""
        doc = self.doc
        return bool(
            (self.result is not None and self.result.samples)
            or self.llama_rows
            or doc.get("depth_sweep")
            or any(item["completed"] for item in doc.get("concurrency", []))
            or doc.get("quality")
        )

    @property
    def noisy(self) -> str | None:
        """The figures whose standard deviation exceeds 20 % of the median, or None."""
        notes = [self.result.noise()] if self.result is not None else []
        notes += [row.noise() for row in self.llama_rows]
        return ", ".join(n for n in notes if n) or None

    def summary_line(self) -> str:
        """One line: the medians (the TUI's summary, the queue's row)."""
        parts = [self.note] if self.note else []
        if self.result is not None:
            s = self.result.summary()
            parts += [
                _stat_text("prefill", s["prefill_tps"]),
                _stat_text("decode", s["decode_tps"]),
                _stat_text("server decode", s["server_decode_tps"]),
                f"TTFT {s['ttft_s']['median'] * 1000:.0f} ms",
            ]
        else:
            parts.append(f"{self.options.kind}: done")
        if self.noisy:
            parts.append(f"NOISY ({self.noisy})")
        if self.run_id is not None:
            parts.append(f"kept as run {self.run_id}")
        return "   ".join(parts)

    def lines(self, width: int | None = None) -> list[str]:
        """The whole report, as the CLI prints it and the TUI's log ends with; with a
        `width`, a longer line wraps at spaces onto an indented line."""
        from sparktop.textfit import fit_lines

        return fit_lines(self._lines(), width)

    def _lines(self) -> list[str]:
        out: list[str] = [self.note] if self.note else []
        t, doc = self.target, self.doc
        if self.result is not None:
            r, s = self.result, self.result.summary()
            exact = "exact (tokenized)" if r.exact_prompt else "approximate (~4 chars/token)"
            out += [
                f"{t.model} at {t.base}: prompt {r.prompt_tokens} tokens {exact}, "
                f"{r.gen_tokens} generated, {len(r.samples)} repetitions",
                f"  TTFT          {s['ttft_s']['median'] * 1000:.0f} ms   "
                f"(server: {_ms(s['server_ttft_s'])})",
                f"  prefill       {_fmt(s['prefill_tps'])}   "
                f"(server: {_fmt(s['server_prefill_tps'])})",
                f"  decode        {_fmt(s['decode_tps'])}   "
                f"(server: {_fmt(s['server_decode_tps'])})",
                "  sources: figures timed by sparktop over the streamed reply; server: "
                + (r.server_source or "none given"),
            ]
        for row in self.llama_rows:
            out.append(f"  llama-bench {row.test:>12}  {row.avg_ts:.1f} ± {row.stddev_ts:.1f} t/s")
        for item in doc.get("depth_sweep", []):
            out.append("  " + depth_text(item))
        for depth in doc.get("depth_skipped", []):
            out.append("  " + skipped_text(depth, doc.get("depth_context"), self.options))
        for item in doc.get("concurrency", []):
            out.append("  " + concurrency_text(item))
        if self.noisy:
            out.append(f"  NOISY: {self.noisy}: {NOISY_WHY}")
        if self.run_id is not None:
            note = ", marked noisy" if self.noisy else ""
            out.append(f"  kept as run {self.run_id}{note} (sparktop results)")
        for item in doc.get("quality", []):
            out.append(quality_line(item))
        return out


NOISY_WHY = "standard deviation above 20 % of the median; run again on a quiet box"


def _fmt(stat: dict, unit: str = "t/s") -> str:
    if stat["median"] is None:
        return "–"
    return f"{stat['median']:.1f} ± {stat['stdev']:.1f} {unit}"


def _ms(stat: dict) -> str:
    return "–" if stat["median"] is None else f"{stat['median'] * 1000:.0f} ms"


def _stat_text(name: str, stat: dict) -> str:
    return f"{name}: {_fmt(stat)}" if stat["median"] is not None else f"{name}: –"


def quality_line(item: dict) -> str:
    mark = "ok " if item["ok"] else "BAD"
    answer = item["answer"].strip().replace("\n", " ")[:70]
    problems = f" ({'; '.join(item['problems'])})" if not item["ok"] else ""
    return f"  quality {item['mode']:<9} {mark} {answer}{problems}"


def _step_text(step: str, sample: Any) -> str:
    """A request's line in the live log: its label and its own figures."""
    text = (
        f"{step}: TTFT {sample.ttft_s * 1000:.0f} ms,"
        f" prefill {sample.prefill_tps:.1f} t/s, decode {sample.decode_tps:.1f} t/s"
    )
    if sample.server_decode_tps:
        text += f" (server {sample.server_decode_tps:.1f})"
    return text


def bench(
    control: Control,
    target: BenchTarget,
    options: BenchOptions,
    *,
    report: Report = quiet,
    cancel: threading.Event | None = None,
) -> BenchOutcome:
    """Run what `options` asks against `target`, keep it (unless options.save is off).

    Refused before any request: lengths below 1, and a prompt and generation the server's
    context cannot hold (scaled down to it instead with options.fit_context). A run that
    measured nothing (a sweep none of whose requests completed) fails and is not kept."""
    from sparktop.bench import api

    options.check()
    cancel = cancel or threading.Event()
    context = _context(target, options)
    options, note = _fit(options, context)
    outcome = BenchOutcome(target, options, {"model": target.model, "url": target.base}, note=note)
    base, name, doc = target.base, target.model, outcome.doc
    if note:
        doc["fitted"] = note
        report(Event("bench", "context", note))

    def progress(step: str, result: Any, sample: Any) -> None:
        fraction = min(1.0, len(result.samples) / options.reps) if options.reps else None
        report(Event("bench", "running", _step_text(step, sample), fraction=fraction))

    try:
        if options.api:
            outcome.result = api.run_api_bench(
                base, name, prompt_tokens=options.prompt, gen_tokens=options.gen,
                repetitions=options.reps, progress=progress, cancel=cancel,
                metrics=target.metrics,
            )  # fmt: skip
            doc["api"] = outcome.result.to_json()
        if options.depths:
            _depths(target, options, context, doc, report, progress, cancel)
        if options.concurrency:
            doc["concurrency"] = api.concurrency_sweep(
                base, name, prompt_tokens=options.prompt, gen_tokens=options.gen, cancel=cancel
            )
            for item in doc["concurrency"]:
                report(Event("bench", "concurrency", concurrency_text(item)))
            _some_completed(doc["concurrency"])
        if options.llama_bench:
            outcome.llama_rows = _llama_bench(target, options, report, cancel)
            doc["llama_bench"] = [row.__dict__ for row in outcome.llama_rows]
        if options.quality:
            from sparktop.bench.quality import quality_smoke

            modes = options.modes or tuple(control.config.bench_modes)
            doc["quality"] = quality_smoke(base, name, modes)
            for item in doc["quality"]:
                report(Event("bench", "quality", quality_line(item).strip()))
    except api.BenchCancelled:
        raise Cancelled("cancelled: the request was closed, the server is idle again") from None
    except api.BenchError as exc:
        raise ActionError(str(exc)) from None
    if cancel.is_set():
        raise Cancelled("cancelled: the request was closed, the server is idle again")
    if not outcome.measured:
        raise ActionError(f"{options.kind}: nothing was measured, nothing kept")
    if options.save:
        outcome.run_id = _keep(outcome)
        doc["run_id"] = outcome.run_id
    return outcome


def _context(target: BenchTarget, options: BenchOptions) -> int | None:
    """The context the server gives one request, when a request of options' lengths is
    sent (None: none is, or the server does not say; the depth sweep needs it)."""
    from sparktop.bench import api

    if not (options.api or options.concurrency or options.depths):
        return None
    context = api.context_of(target.base)
    if context is None and options.depths:
        raise ActionError("the server does not say its context: the depth sweep cannot tell "
                          "which depths fit")  # fmt: skip
    return context


def _fit(options: BenchOptions, context: int | None) -> tuple[BenchOptions, str | None]:
    """Options whose prompt and generation fit `context`, and the note saying they were
    scaled down (options.fit_context), else an error naming the lengths and the context."""
    need = options.prompt + options.gen
    if context is None or need <= context:
        return options, None
    lengths = f"pp{options.prompt} + tg{options.gen}"
    if not options.fit_context or context < 2:
        raise ActionError(f"the server's context is {context} tokens; {lengths} needs {need}: "
                          "use --prompt/--gen (or serve with a larger context)",
                          code=BAD_INPUT)  # fmt: skip
    prompt = max(1, options.prompt * context // need)
    gen = max(1, min(options.gen * context // need, context - prompt))
    note = f"{lengths} scaled down to pp{prompt} + tg{gen}: the server's context is {context}"
    return replace(options, prompt=prompt, gen=gen), note


def concurrency_text(item: dict[str, Any]) -> str:
    """One stream count of the concurrency sweep, with why its requests failed, if any."""
    text = (f"{item['streams']} streams: {item['aggregate_decode_tps']:.1f} t/s aggregate "
            f"({item['completed']} completed)")  # fmt: skip
    if item.get("errors"):
        text += f", {len(item['errors'])} failed: {item['errors'][0]}"
    return text


def _some_completed(rows: list[dict[str, Any]]) -> None:
    """A concurrency sweep none of whose requests completed measured nothing: an error."""
    if any(row["completed"] for row in rows):
        return
    errors = [e for row in rows for e in row.get("errors") or []]
    why = f": {errors[0]}" if errors else ""
    raise ActionError(f"no request of the concurrency sweep completed{why}")


def _depths(target: BenchTarget, options: BenchOptions, context: int | None, doc: dict[str, Any],
            report: Report, progress: Any, cancel: threading.Event) -> None:  # fmt: skip
    """The depth sweep: first which depths the served context leaves out, then each depth."""
    from sparktop.bench import api

    fits, skipped = api.split_depths(api.DEPTHS, options.prompt, options.gen, context)
    doc["depth_context"] = context
    doc["depth_skipped"] = list(skipped)
    for depth in skipped:
        report(Event("bench", "depth", skipped_text(depth, context, options)))
    sweep = api.depth_sweep(
        target.base, target.model, prompt_tokens=options.prompt, gen_tokens=options.gen,
        depths=fits, context=context, progress=progress, cancel=cancel, metrics=target.metrics,
    )  # fmt: skip
    doc["depth_sweep"] = [{"depth": d, **r.summary()} for d, r in sweep]
    for item in doc["depth_sweep"]:
        report(Event("bench", "depth", depth_text(item)))


def depth_text(item: dict[str, Any]) -> str:
    return (
        f"depth {item['depth']:>6}: prefill {_fmt(item['prefill_tps'])}, "
        f"decode {_fmt(item['decode_tps'])}"
    )


def skipped_text(depth: int, context: int | None, options: BenchOptions) -> str:
    """Why a depth was left out: the request would not fit the served context."""
    need = f"{depth} + {options.prompt} + {options.gen} tokens"
    if context is None:
        return f"skipped depth {depth}: the server does not say its context (needs {need})"
    return f"skipped depth {depth}: context {context} too small (needs {need})"


def _llama_bench(
    target: BenchTarget, options: BenchOptions, report: Report, cancel: threading.Event
) -> list[Any]:
    from sparktop.bench.llama_bench import run_llama_bench

    path = target.model_file
    if path is None or not path.is_file():
        raise ActionError("llama-bench needs a catalog model whose GGUF is on this machine")
    argv = f"-p {options.prompt} -n {options.gen} -r {options.reps} {path}"
    report(Event("bench", "llama-bench", f"llama-bench {argv}"))
    try:
        rows = run_llama_bench(path, prompt=options.prompt, gen=options.gen,
                               repetitions=options.reps, cancel=cancel, engines=target.engines,
                               server_pid=target.pid)  # fmt: skip
    except RuntimeError as exc:
        if cancel.is_set():
            raise Cancelled("cancelled: llama-bench was stopped") from None
        raise ActionError(str(exc)) from None
    for row in rows:
        figures = f"{row.avg_ts:.1f} ± {row.stddev_ts:.1f} t/s"
        report(Event("bench", "llama-bench", f"llama-bench {row.test:>12}: {figures}"))
    return rows


def _keep(outcome: BenchOutcome) -> int:
    """Keep a run with every field the history, compare and champions read."""
    from sparktop.bench.store import ResultStore

    t, options = outcome.target, outcome.options
    store = ResultStore()
    common = {"engine": t.engine, "quant": t.quant, "serve_flags": t.serve_flags,
              "noisy": outcome.noisy}  # fmt: skip
    if outcome.result is not None:
        return store.add_api(outcome.result, **common, detail=outcome.doc)
    prefill = decode = None
    for row in outcome.llama_rows:  # llama-bench alone: its pp and tg rows are the figures
        if row.test.startswith("pp") and "@" not in row.test:
            prefill = row.avg_ts
        elif row.test.startswith("tg") and "@" not in row.test:
            decode = row.avg_ts
    prompt, gen, reps = _lengths(options)
    return store.add(
        model=t.model, kind=options.kind, prompt_tokens=prompt, gen_tokens=gen,
        repetitions=reps, prefill_tps=prefill, decode_tps=decode, detail=outcome.doc, **common,
    )  # fmt: skip


def _lengths(options: BenchOptions) -> tuple[int | None, int | None, int | None]:
    """Prompt and generated tokens and repetitions a sweep run alone really used: the depth
    sweep runs each depth once, the concurrency sweep each stream count once, the quality
    prompts are their own."""
    if options.kind == "quality":
        return None, None, None
    return options.prompt, options.gen, options.reps if options.kind == "llama-bench" else 1


# -- the overnight queue ------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    model: str
    outcome: BenchOutcome | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.outcome is None:
            return {"model": self.model, "error": self.error}
        s = self.outcome.result.summary() if self.outcome.result is not None else None
        quality = self.outcome.doc.get("quality")
        return {
            "model": self.model,
            "run_id": self.outcome.run_id,
            "prefill_tps": s["prefill_tps"]["median"] if s else None,
            "decode_tps": s["decode_tps"]["median"] if s else None,
            "ttft_s": s["ttft_s"]["median"] if s else None,
            "coherent": all(q["ok"] for q in quality) if quality is not None else None,
        }

    def line(self) -> str:
        if self.outcome is None:
            return f"  {self.model:<28} FAILED: {self.error}"
        row = self.to_json()
        coherent = {None: "", True: "  coherent", False: "  INCOHERENT"}[row["coherent"]]
        speeds = f"pp {row['prefill_tps'] or 0:8.1f}  tg {row['decode_tps'] or 0:7.1f} t/s"
        ttft = f"TTFT {(row['ttft_s'] or 0) * 1000:5.0f} ms"
        return f"  {self.model:<28} {speeds}  {ttft}  run {row['run_id']}{coherent}"


def queue(
    control_factory: Any,
    names: list[str],
    options: BenchOptions,
    *,
    report: Report = quiet,
    cancel: threading.Event | None = None,
) -> list[QueueRow]:
    """Serve each catalog model through the exclusive switch (no questions), benchmark it.

    `control_factory()` gives a fresh Control per model: each serve sees the box anew.
    """
    options.check()
    rows = []
    for name in names:
        with control_factory() as control:
            try:
                entry = resolve_entry(control, name)
                plan = plan_serve(control, entry)
                if plan.already_running is None:
                    report(Event("queue", "serving", f"serving {name} ({plan.fit.summary()})"))
                    serve_entry(control, plan, confirmed=True, report=report)
                report(Event("queue", "benchmarking", f"benchmarking {name}"))
                target = target_of(control, entry.serve.served_name)
                outcome = bench(control, target, options, cancel=cancel)
            except Cancelled:
                raise
            except ActionError as exc:
                report(Event("queue", FAILED, f"{name}: {exc}"))
                rows.append(QueueRow(name, error=str(exc)))
                continue
        rows.append(QueueRow(name, outcome))
    return rows


# -- kept results -------------------------------------------------------------------------


def open_store() -> Any:
    from sparktop.bench.store import ResultStore

    return ResultStore()


def history_rows(store: Any, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    return store.history(model, limit=limit)


def history_lines(store: Any, model: str | None = None, width: int | None = None) -> list[str]:
    """`sparktop results`: date, model, kind, lengths, repetitions, figures, noisy mark;
    fitting `width` (None: every column)."""
    return tables.history_lines(history_rows(store, model), model, width)


def compare(store: Any, a: int, b: int) -> dict[str, Any]:
    """Two kept runs and the deltas of B against A (`results --compare A B --json`)."""
    try:
        return store.compare(a, b)
    except KeyError as exc:
        raise ActionError(str(exc.args[0])) from None


def compare_lines(store: Any, a: int, b: int, width: int | None = None) -> tuple[str, list[str]]:
    """Two kept runs side by side, readable labels, deltas of B against A: a title and the
    table's lines (`results --compare A B`, `m` twice on the bench screen)."""
    return tables.compare_lines(compare(store, a, b), width)


def champion_lines(store: Any, config: Any, with_rules: bool = False) -> list[str]:
    """The champion run per mode (and, for the TUI, each mode's rule)."""
    champions = store.champions()
    lines = []
    for mode in config.bench_modes:
        run = champions.get(mode)
        rule = f"   (rule: {config.champion_rule(mode).describe()})" if with_rules else ""
        if run is None:
            lines.append(f"{mode:<10} –{rule}")
            continue
        lines.append(f"{mode:<10} run {run['id']}: {run['model']}  pp {run['prefill_tps'] or 0:.1f}"
                     f"  tg {run['decode_tps'] or 0:.1f} t/s  ({run['reason']}){rule}")  # fmt: skip
    return lines


def promote(store: Any, config: Any, run_id: int, mode: str | None, force: bool = False) -> str:
    """Make a run the champion of a mode if it passes the mode's rule; the line to show."""
    if mode not in config.bench_modes:
        raise ActionError(f"--mode must be one of {', '.join(config.bench_modes)}")
    try:
        reason = store.promote(mode, run_id, config.champion_rule(mode), force=force)
    except (KeyError, ValueError) as exc:
        raise ActionError(str(exc.args[0])) from None
    return f"run {run_id} is the {mode} champion ({reason})"
