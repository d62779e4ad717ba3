"""Serve, stop, forget, test, logs and export: the server verbs, for both faces.

Each verb resolves its target, asks what must be asked (a `…Plan` carries the question both
faces put to the user), runs, and returns an outcome whose `message` is the line both faces
show. Errors are `ActionError`s.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sparktop.actions.errors import BAD_INPUT, ActionError, AmbiguousServer, Cancelled
from sparktop.actions.events import Event, Report, quiet
from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.fit import FITS, NO_FIT
from sparktop.control import Control
from sparktop.servers.info import CRASHED, READY, ServerInfo
from sparktop.servers.printable import printable
from sparktop.servers.registry import ManagedServer
from sparktop.servers.smoke import SmokeResult
from sparktop.servers.supervisor import ServeError, ServeEvent, ServePlan
from sparktop.units import fmt_bytes


def _to_report(action: str, report: Report) -> Callable[[ServeEvent], None]:
    """The supervisor's progress, as action events."""

    def forward(event: ServeEvent) -> None:
        report(Event(action, event.stage, event.message, event.elapsed_s, event.log_tail))

    return forward


def _error(exc: ServeError) -> ActionError:
    return ActionError(str(exc), exc.log_tail)


# -- lookups ------------------------------------------------------------------------------


def resolve_entry(control: Control, name: str) -> ModelEntry:
    """A catalog entry by name or served name; else an ActionError (exit 2) that suggests
    close names, or says the entry is there but did not load."""
    from sparktop.catalog.loader import did_you_mean

    catalog = control.catalog
    entry = catalog.get(name) or catalog.by_served_name(name)
    if entry is not None:
        return entry
    problems = catalog.invalid.get(name)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ActionError(f"catalog entry {name!r} has errors: {problems[0]}{more}", code=BAD_INPUT)
    served = (e.serve.served_name for e in catalog)
    close = did_you_mean(name, [*catalog.entries, *catalog.invalid]) or did_you_mean(name, served)
    hint = f"did you mean {close}?" if close else "`sparktop catalog` lists the models"
    raise ActionError(f"unknown model {name!r} ({hint})", code=BAD_INPUT)


def resolve_server(
    control: Control, target: str, servers: tuple[ServerInfo, ...] | None = None
) -> ServerInfo:
    """A running server by served name, catalog name, port or PID.

    A name several servers answer to means, in this order: the server sparktop started for
    the catalog entry of that name, else the one server whose served name it is; still
    several: `AmbiguousServer`, listing them.
    """
    servers = control.poll() if servers is None else servers
    matches = [s for s in servers if target in (s.name, s.catalog_name)]
    if not matches and target.isdigit():
        matches = [s for s in servers if int(target) in (s.pid, s.port)]
    candidates = [s for s in matches if s.health != CRASHED] or matches
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _no_server(control, target, servers)
    chosen = _managed_for_entry(control, target, candidates)
    if chosen is None:
        served = [s for s in candidates if s.name == target]
        chosen = served[0] if len(served) == 1 else None
    if chosen is None:
        raise AmbiguousServer(target, candidates)
    return chosen


def _no_server(control: Control, target: str, servers: tuple[ServerInfo, ...]) -> ActionError:
    """Why `target` names no running server (exit 2): the close names, or what the PID runs."""
    if target.isdigit():
        from sparktop.servers.procscan import read_argv

        argv = read_argv(control.roots.proc / target / "cmdline")
        if not argv:
            return ActionError(f"no inference server with PID or port {target}", code=BAD_INPUT)
        return ActionError(
            f"pid {target} ({_cut(' '.join(argv), 60)}) is not an inference server; "
            "sparktop only stops inference servers",
            code=BAD_INPUT,
        )
    from sparktop.catalog.loader import did_you_mean

    names = [name for s in servers for name in (s.name, s.catalog_name) if name]
    close = did_you_mean(target, names)
    running = ", ".join(dict.fromkeys(s.name for s in servers)) or "none"
    hint = f"did you mean {close}?" if close else f"running: {running}"
    return ActionError(f"no server named {target!r} ({hint})", code=BAD_INPUT)


def _cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut after a whole word with `…`."""
    if len(text) <= width:
        return text
    space = text.rfind(" ", 0, width - 1)
    return text[:space] + " …" if space > 0 else text[: width - 1] + "…"


def _managed_for_entry(
    control: Control, target: str, candidates: list[ServerInfo]
) -> ServerInfo | None:
    """The one server sparktop started for the catalog entry `target` names (by its name,
    else by its served name), among `candidates`; None when not exactly one."""
    if control.catalog.get(target) is not None:
        names = {target}
    else:
        names = {e.name for e in control.catalog if e.serve.served_name == target}
    managed = [s for s in candidates if s.managed and s.catalog_name in names]
    return managed[0] if len(managed) == 1 else None


def proxy_token(control: Control, server: ServerInfo) -> str | None:
    """The token a request to `server` needs, from the variable its catalog entry names."""
    entry = control.catalog.get(server.catalog_name or "")
    if entry and entry.serve.proxy and entry.serve.proxy.token_env:
        return os.environ.get(entry.serve.proxy.token_env)
    return None


# -- serve --------------------------------------------------------------------------------


def plan_serve(
    control: Control, entry: ModelEntry, servers: tuple[ServerInfo, ...] | None = None
) -> ServePlan:
    """What serving `entry` would do now: fit, the servers it stops, a blocked port; when it
    does not fit, the servers whose memory would make it fit (`evict`) or why none would."""
    servers = control.poll() if servers is None else servers
    plan = control.supervisor.plan(entry, servers, control.catalog.entries)
    if plan.fit.verdict != NO_FIT or plan.already_running is not None:
        return plan
    return _plan_evictions(control, plan, servers)


def _plan_evictions(
    control: Control, plan: ServePlan, servers: tuple[ServerInfo, ...]
) -> ServePlan:
    """`plan` with the fewest servers to stop first, least recently used first; never one
    whose entry says `keep: true`, a conflict (stopped anyway), or one sparktop did not start."""
    from dataclasses import replace

    from sparktop.catalog.fit import TIGHT, reserve_bytes
    from sparktop.probes.memory import read_memory
    from sparktop.servers.evict import Candidate, Eviction, choose
    from sparktop.servers.idle import ActivityLog, server_key

    now = time.time()
    seen = ActivityLog().observe(servers, now)
    fit = plan.fit
    assert fit.need_bytes is not None  # a verdict of NO_FIT has a need
    busy = {s.key for s in plan.conflicts}
    candidates = []
    for s in servers:
        if not s.managed or s.pid is None or s.health == CRASHED or s.key in busy:
            continue
        entry = control.catalog.get(s.catalog_name or "")
        key = server_key(s)
        last = seen.get(key, now) if key is not None else now
        freed = (s.rss_bytes or 0) + (s.gpu_bytes or 0)
        candidates.append(Candidate(s, freed, last, keep=bool(entry and entry.keep)))
    available = fit.available_bytes + fit.freed_bytes
    reserve = reserve_bytes(read_memory(control.roots.proc).total_bytes)
    chosen = choose(fit.need_bytes + reserve, available, candidates)
    if chosen is None:  # no room to spare: then at least room
        chosen = choose(fit.need_bytes, available, candidates)
    if not chosen:
        return replace(plan, no_room=_no_room(fit.need_bytes - available, candidates))
    freed = sum(c.freed_bytes for c in chosen)
    headroom = available + freed - fit.need_bytes
    after = replace(
        fit,
        verdict=FITS if headroom >= reserve else TIGHT,
        freed_bytes=fit.freed_bytes + freed,
        headroom_bytes=headroom,
    )
    evict = tuple(Eviction(c.item, c.freed_bytes, now - c.last_active) for c in chosen)
    return replace(plan, evict=evict, evict_fit=after)


def _no_room(short: int, candidates: list) -> str:
    """Why stopping servers would not make room, with the numbers."""
    usable = [c for c in candidates if not c.keep]
    kept = [c.item.name for c in candidates if c.keep]
    keeping = f"; kept (keep: true): {', '.join(kept)}" if kept else ""
    if not usable:
        return f"no server sparktop started could be stopped to make room{keeping}"
    total = sum(c.freed_bytes for c in usable)
    names = ", ".join(c.item.name for c in usable)
    return (
        f"stopping {names} would free {fmt_bytes(total)}, "
        f"{fmt_bytes(short - total)} short of the {fmt_bytes(short)} missing{keeping}"
    )


def evict_text(plan: ServePlan) -> str:
    """`stop qwen3-coder-30b (idle 2h 05m, 31.2 GiB) → fits with 9.4 GiB to spare`."""
    after = plan.evict_fit
    if not plan.evict or after is None or after.headroom_bytes is None:
        return ""
    spare = fmt_bytes(after.headroom_bytes)
    tight = "" if after.verdict == FITS else " (tight)"
    how = f"fits with {spare} to spare{tight}"
    return ", ".join(e.text() for e in plan.evict) + f" → {how}"


def already_serving(plan: ServePlan) -> ServerInfo | None:
    """The server that already serves `plan`'s entry and answers (ready): serving it again
    is done at once, so scripts can call `serve` whenever they need the model."""
    running = plan.already_running
    return running if running is not None and running.health == READY else None


def serve_refusal(plan: ServePlan) -> str | None:
    """Why `plan` cannot be served (running but not ready, port held); None when it can."""
    entry = plan.entry
    running = plan.already_running
    if running is not None and already_serving(plan) is None:
        return (
            f"{entry.name} is already running (pid {running.pid}, port {running.port}) "
            f"but is not ready ({running.health})"
        )
    return plan.port_blocker


def serve_question(plan: ServePlan) -> list[str]:
    """What the user confirms before a serve that stops others or may not fit (empty: none)."""
    if not plan.needs_confirmation or already_serving(plan) is not None:
        return []
    entry = plan.entry
    lines = [f"Serve {entry.name} ({entry.engine}) on port {entry.serve.port}?", ""]
    lines.append(f"Memory: {plan.fit.summary()}")
    lines += [f"  note: {note}" for note in plan.fit.notes]
    for server in plan.conflicts:
        lines.append(f"Stops first: {server.who}")
    if plan.evict:
        lines.append(f"To make room it stops first: {evict_text(plan)}")
    elif plan.fit.verdict == NO_FIT:
        if plan.no_room:
            lines.append(f"Stopping servers would not help: {plan.no_room}.")
        lines.append("It does not fit: serving anyway may OOM the whole box.")
    return lines


def conflicts_text(plan: ServePlan) -> str:
    return ", ".join(s.who for s in plan.conflicts)


@dataclass(frozen=True)
class ServeOutcome:
    entry: ModelEntry
    record: ManagedServer | None
    """What sparktop started; None when the entry was already serving (`already`)."""
    url: str
    already: ServerInfo | None = None
    """The server that already served the entry: nothing was started or stopped."""

    @property
    def message(self) -> str:
        name = self.entry.serve.served_name
        if self.already is not None:
            s = self.already
            return f"{name} is already serving on :{s.port} ({self.url}/v1, pid {s.pid})"
        r = self.record
        assert r is not None
        return f"{name} is ready: {self.url}/v1 (pid {r.pid}, log {r.log_path})"

    @property
    def rpc_line(self) -> str | None:
        """Split serving: the workers the head uses (None when not split)."""
        if self.record is None or not self.record.rpc_workers:
            return None
        workers = ", ".join(
            f"{w['endpoint']} (" + (f"pid {w['pid']}" if w.get("started") else "running") + ")"
            for w in self.record.rpc_workers
        )
        return f"split over rpc workers: {workers}"

    def lines(self) -> list[str]:
        return [self.message] + ([f"  {self.rpc_line}"] if self.rpc_line else [])


def check_ready_timeout(seconds: float | None) -> None:
    """An ActionError (exit 2) unless `seconds` is None or a finite number more than 0."""
    if seconds is not None and not 0 < seconds < float("inf"):  # NaN fails both
        raise ActionError(f"--timeout must be more than 0 seconds, got {seconds:g}", code=BAD_INPUT)


def serve(
    control: Control,
    plan: ServePlan,
    *,
    confirmed: bool,
    force: bool = False,
    evict: bool = False,
    report: Report = quiet,
    ready_timeout_s: float | None = None,
) -> ServeOutcome:
    """Serve a planned entry. `confirmed`: the user agreed to stop the conflicts (or there
    are none); `evict`: to stop the servers that make room (`plan.evict`); `force`: serve
    even if it does not fit. Already serving: done, nothing started or stopped."""
    from sparktop.servers.http import base_url

    entry = plan.entry
    check_ready_timeout(ready_timeout_s)
    running = already_serving(plan)
    if running is not None and running.url is not None:
        return ServeOutcome(entry, None, running.url, already=running)
    refusal = serve_refusal(plan)
    if refusal:
        raise ActionError(refusal)
    if plan.fit.verdict == NO_FIT and not force and not (evict and plan.evict):
        raise ActionError(fit_refusal(plan))
    if plan.conflicts and not confirmed:
        raise ActionError(
            f"serving {entry.name} would stop {conflicts_text(plan)}; pass --yes to do it"
        )
    since = time.time()
    try:
        if evict and plan.evict:
            plan = _make_room(control, plan, report)
        record = control.supervisor.serve(
            plan, force=force, progress=_to_report("serve", report), ready_timeout_s=ready_timeout_s
        )
    except ServeError as exc:
        raise _error(exc) from None
    except KeyboardInterrupt:  # Ctrl-C: what this serve started goes too, not left loading
        with _no_second_interrupt():
            raise _interrupted(control, entry, since) from None
    return ServeOutcome(entry, record, base_url(record.host, record.port))


def _interrupted(control: Control, entry: ModelEntry, since: float) -> Cancelled:
    """Stop the server this serve started (after `since`) for `entry`, by its record (its
    process group); what was done, as the Cancelled to raise."""
    ours = [r for r in control.registry.load()
            if r.name == entry.name and r.started_at >= since and r.ended_at is None]  # fmt: skip
    if not ours:
        return Cancelled(f"interrupted before {entry.name} was started")
    record = max(ours, key=lambda r: r.started_at)
    server = next((s for s in control.poll() if s.pid == record.pid), None)
    if server is None or server.pid is None:  # ended by itself meanwhile
        return Cancelled(f"interrupted: {entry.name} (pid {record.pid}) had already ended")
    outcome = stop(control, StopPlan(server), confirmed=True)
    if not outcome.ok:
        return Cancelled(f"interrupted; stopping {entry.name} left: {outcome.message}")
    return Cancelled(f"interrupted: stopped {entry.name} (pid {record.pid}) before it was ready")


@contextlib.contextmanager
def _no_second_interrupt() -> Iterator[None]:
    """Ignore Ctrl-C while cleaning up after one (main thread only: where signals land)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def fit_refusal(plan: ServePlan) -> str:
    """The line that refuses a serve that does not fit: what would make room, or why
    nothing would, with the numbers."""
    said = f"{plan.entry.name} {plan.fit.summary()}"  # "NAME does not fit: needs …"
    if plan.evict:
        return f"{said}; {evict_text(plan)} (--evict to do it)"
    why = f"; {plan.no_room}" if plan.no_room else ""
    return f"{said}{why} (--force to try anyway)"


def _make_room(control: Control, plan: ServePlan, report: Report) -> ServePlan:
    """Stop `plan.evict`, saying what each gave back; the plan as it is then."""
    from dataclasses import replace

    for eviction in plan.evict:
        server = eviction.server
        report(Event("serve", "stopping", f"making room: {eviction.text()}"))
        outcome = stop(control, StopPlan(server), confirmed=True)
        report(Event("serve", "stopped", outcome.message, outcome.elapsed_s))
        if not outcome.ok:
            raise ActionError(f"could not make room for {plan.entry.name}: {outcome.message}")
    assert plan.evict_fit is not None
    return replace(plan, fit=plan.evict_fit, evict=())


# -- stop / forget ------------------------------------------------------------------------


@dataclass(frozen=True)
class StopPlan:
    server: ServerInfo

    @property
    def forget_only(self) -> bool:
        """A crashed server sparktop started: nothing runs, only its record goes."""
        return self.server.health == CRASHED or self.server.pid is None

    @property
    def needs_confirmation(self) -> bool:
        """Only a server sparktop did not start; forgetting a crash stops nothing."""
        return not self.forget_only and not self.server.managed and not self.boxed

    @property
    def boxed(self) -> str | None:
        """Why sparktop sends no signal at all: the server runs in a container (or network
        namespace) sparktop did not start; says how to stop it there. None: it may."""
        s = self.server
        if s.managed or self.forget_only:
            return None
        if s.container is not None:
            from sparktop.servers.containers import describe, stop_command

            return (
                f"{s.name} (pid {s.pid}) runs in {describe(s.container)}, which sparktop did "
                f"not start; sparktop sends it no signal. Stop it with: {stop_command(s.container)}"
            )
        if s.reachable_via is not None:
            return (
                f"{s.name} (pid {s.pid}) runs in another network namespace, which sparktop did "
                "not start; sparktop sends it no signal. Stop it with the tool that started it"
            )
        return None

    @property
    def runtime_stop(self) -> tuple[str, ...] | None:
        """A boxed server's `docker stop NAME` / `podman stop NAME`, offered when that CLI is
        here; None: nothing sparktop may run (a pod: `kubectl delete pod` is only suggested)."""
        if not self.boxed or self.server.container is None:
            return None
        from sparktop.servers.containers import stop_argv

        argv = stop_argv(self.server.container)
        return tuple(argv) if argv else None

    @property
    def runtime_question(self) -> str:
        s = self.server
        assert s.container is not None and self.runtime_stop is not None
        from sparktop.servers.containers import describe

        return (
            f"{s.name} (pid {s.pid}) runs in {describe(s.container)}, which sparktop did not "
            f"start. Run `{' '.join(self.runtime_stop)}`?"
        )

    @property
    def runtime_refusal(self) -> str:
        """The CLI's line when the runtime's stop was offered and not taken."""
        return f"{self.boxed} (or pass --runtime-stop to have sparktop run it)"

    @property
    def question(self) -> str:
        s = self.server
        return (
            f"{s.name} (pid {s.pid}, port {s.port}) was not started by sparktop. "
            "Stop it (SIGTERM, then SIGKILL)?"
        )

    @property
    def refusal(self) -> str:
        """The CLI's line when the question was not answered yes."""
        s = self.server
        return f"{s.name} (pid {s.pid}) was not started by sparktop; pass --yes to stop it"


def plan_stop(
    control: Control, target: str | ServerInfo, servers: tuple[ServerInfo, ...] | None = None
) -> StopPlan:
    server = target if isinstance(target, ServerInfo) else resolve_server(control, target, servers)
    return StopPlan(server)


@dataclass(frozen=True)
class StopOutcome:
    name: str
    pid: int | None
    forced: bool
    port_freed: bool
    memory_returned_bytes: int | None
    elapsed_s: float
    port: int | None = None
    forgotten: bool = False
    ran: str | None = None
    """The runtime command sparktop ran to stop it (`docker stop NAME`); None: it signalled."""

    @property
    def ok(self) -> bool:
        return self.forgotten or self.port_freed or self.ran is not None

    @property
    def message(self) -> str:
        if self.ran is not None:
            return (
                f"stopped {self.name} (pid {self.pid}) with `{self.ran}` in {self.elapsed_s:.1f} s"
            )
        if self.forgotten:
            return f"forgot the crashed server {self.name} (its record is cleared)"
        freed = self.memory_returned_bytes
        memory = ""
        if freed is not None:  # MemAvailable before and after: others may have taken it
            came = f"{fmt_bytes(freed)} of memory" if freed > 0 else "no memory"
            memory = f"; {came} came back"
        port = "port free" if self.port_freed else f"port {self.port} STILL IN USE"
        how = " (forced with SIGKILL)" if self.forced else ""
        return (
            f"stopped {self.name} (pid {self.pid}){how} in {self.elapsed_s:.1f} s: {port}{memory}"
        )


def stop(
    control: Control,
    plan: StopPlan,
    *,
    confirmed: bool,
    report: Report = quiet,
    runtime_stop: bool = False,
) -> StopOutcome:
    """Stop (or, when crashed, forget) the planned server; `confirmed` answers its question,
    `runtime_stop` the offer to run its container runtime's stop command."""
    server = plan.server
    if plan.boxed and runtime_stop and plan.runtime_stop:
        return _runtime_stop(plan.runtime_stop, server, report)
    if plan.boxed:
        raise ActionError(plan.boxed)
    if plan.needs_confirmation and not confirmed:
        raise ActionError(plan.refusal)
    started = time.monotonic()
    if plan.forget_only:
        # with no PID the supervisor clears the record (and its RPC workers) and says so
        with contextlib.suppress(ServeError):
            control.supervisor.stop(server, progress=_to_report("stop", report))
        return StopOutcome(server.name, None, False, True, None,
                           time.monotonic() - started, server.port, forgotten=True)  # fmt: skip
    try:
        result = control.supervisor.stop(server, progress=_to_report("stop", report))
    except ServeError as exc:
        raise _error(exc) from None
    return StopOutcome(
        name=server.name,
        pid=server.pid,
        forced=result.forced,
        port_freed=result.port_freed,
        memory_returned_bytes=result.memory_returned_bytes,
        elapsed_s=result.elapsed_s,
        port=server.port,
    )


def _runtime_stop(argv: tuple[str, ...], server: ServerInfo, report: Report) -> StopOutcome:
    """Run `docker stop NAME` (an argv, with a timeout); its failure is one line."""
    from sparktop.servers.containers import run_runtime

    command = " ".join(argv)
    started = time.monotonic()
    report(Event("stop", "stopping", f"running {command}"))
    failed = run_runtime(argv)
    if failed is not None:
        raise ActionError(failed)
    return StopOutcome(server.name, server.pid, False, False, None,
                       time.monotonic() - started, server.port, ran=command)  # fmt: skip


# -- idle stop ----------------------------------------------------------------------------


def idle_limits(control: Control) -> dict[str, float]:
    """Catalog entry name → its `idle_stop_after` in seconds, for the entries that have one."""
    return {e.name: e.idle_stop_after_s for e in control.catalog if e.idle_stop_after_s}


@dataclass(frozen=True)
class IdleWatch:
    """One look at the servers' activity: the idle stops it did and the countdowns left."""

    servers: tuple[ServerInfo, ...]
    """The servers looked at, a pending idle stop in each one's `idle_stop_in_s` (and noted
    in its health detail)."""
    stopped: tuple[str, ...] = ()
    """One line per server stopped for being idle (what came back included)."""
    stop_in_s: dict[str, float] = field(default_factory=dict)
    """Server key → seconds until its idle stop."""

    @property
    def next_stop_s(self) -> float | None:
        """Seconds until the next idle stop is due; None: none pending."""
        return min(self.stop_in_s.values(), default=None)


def watch_idle(
    control: Control,
    servers: tuple[ServerInfo, ...],
    *,
    stop_due: bool = True,
    report: Report = quiet,
) -> IdleWatch:
    """Note each server's activity (every look, so `--evict` knows which was used last)
    and, with `stop_due` (the TUI and the agent, never a one-shot command), stop the
    servers sparktop started whose entry's `idle_stop_after` has passed without a request."""
    from dataclasses import replace

    from sparktop.servers.idle import ActivityLog, idle_states
    from sparktop.units import fmt_duration

    now = time.time()
    seen = ActivityLog().observe(servers, now)
    limits = idle_limits(control)
    if not limits:
        return IdleWatch(servers)
    stopped: list[str] = []
    countdown: dict[str, float] = {}
    gone: set[str] = set()
    for state in idle_states(servers, limits, seen, now):
        server = state.server
        if not state.due:
            countdown[server.key] = state.stop_in_s
            continue
        if not stop_due:
            continue
        try:
            outcome = stop(control, StopPlan(server), confirmed=True, report=report)
        except ActionError as exc:
            stopped.append(f"idle stop of {server.name} failed: {exc}")
            continue
        gone.add(server.key)
        stopped.append(
            f"{outcome.message} (no request for {fmt_duration(state.idle_s)}; "
            f"idle_stop_after {fmt_duration(state.after_s)})"
        )
    shown = []
    for server in servers:
        if server.key in gone:
            continue
        left = countdown.get(server.key)
        if left is not None:
            note = f"idle stop in {fmt_duration(left)}"
            detail = f"{server.health_detail}; {note}" if server.health_detail else note
            server = replace(server, health_detail=detail, idle_stop_in_s=left)
        shown.append(server)
    return IdleWatch(tuple(shown), tuple(stopped), countdown)


def idle_tick(control: Control, servers: Callable[[], tuple[ServerInfo, ...]]) -> list[str]:
    """For a long-running process that does not poll on its own (`sparktop agent`): look
    only when some entry has an `idle_stop_after`; the idle stops done, one line each."""
    if not idle_limits(control):
        return []
    return list(watch_idle(control, servers()).stopped)


# -- test ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    url: str
    result: SmokeResult
    name: str | None = None

    __test__ = False  # not a pytest class

    @property
    def ok(self) -> bool:
        return self.result.ok

    def lines(self, width: int | None = None) -> list[str]:
        """The report both faces show: each check with latency, coherence, the reply; with
        a `width`, long details and the reply wrap onto indented lines (none is cut)."""
        from sparktop.textfit import hang, wrap

        r, p = self.result, printable  # the model's name and reply: server text
        out = wrap(p(f"testing {r.model or self.name or '?'} at {self.url}"), width, "    ", "")
        for check in r.checks:
            out += hang(p(f"  {check.head()}"), p(check.detail), width)
        if r.coherence is not None:
            mark = "PASS" if r.coherence.ok else "FAIL"
            out += hang(f"  {mark}  {'coherence':22} {'':10}  ", p(r.coherence.summary()), width)
        if r.reply:
            out += wrap(p(r.reply.strip()[:300]), width, "         ", "  reply: ", words=True)
        rates = [r.timings.get(k) for k in ("prompt_per_second", "predicted_per_second")]
        if all(isinstance(v, int | float) for v in rates) and rates[1]:  # server text: check
            text = f"server timings: prompt {rates[0]:.1f} t/s, generation {rates[1]:.1f} t/s"
            out += wrap(text, width, "    ", "  ")
        return out

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()


def base_of(url: str) -> str:
    """A server's base URL from what a user types (`…/v1` and a trailing / dropped)."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def run_test(control: Control, target: str | ServerInfo, *, report: Report = quiet) -> TestOutcome:
    """/health, /v1/models, one chat completion and a coherence check of its reply."""
    from sparktop.servers.smoke import run_smoke

    if isinstance(target, str) and target.startswith(("http://", "https://")):
        url, model, token, name = base_of(target), None, None, None
    else:
        server = target if isinstance(target, ServerInfo) else resolve_server(control, target)
        if server.url is None:
            raise ActionError(f"{server.name} has no known port")
        url, model, name = server.url, server.name, server.name
        token = proxy_token(control, server)
    started = time.monotonic()
    report(Event("test", "testing", f"testing {name or url}"))

    def progress(line: str) -> None:
        report(Event("test", "testing", line, time.monotonic() - started))

    return TestOutcome(url, run_smoke(url, model, token=token, progress=progress), name)


# -- logs / export ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsOutcome:
    name: str
    path: str
    lines: tuple[str, ...]


def log_path(control: Control, target: str | ServerInfo) -> str:
    """The log of the newest server sparktop started under that name, PID or served name."""
    if isinstance(target, ServerInfo):
        if not target.log_path and target.container is not None:
            from sparktop.servers.containers import describe, logs_command

            raise ActionError(
                f"{target.name} runs in {describe(target.container)}: its log is not readable "
                f"here; see it with: {logs_command(target.container)}"
            )
        if not target.log_path:
            raise ActionError(f"{target.name} was not started by sparktop: no log here")
        return target.log_path
    records = [r for r in control.registry.load() if target in (r.name, r.served_name, str(r.pid))]
    if not records:
        try:  # a running server sparktop did not start: its container's log, where readable
            server = resolve_server(control, target)
        except ActionError:
            server = None
        if server is not None and server.container is not None:
            return log_path(control, server)
        raise ActionError(f"no server named {target!r} was started by sparktop", code=BAD_INPUT)
    return max(records, key=lambda r: r.started_at).log_path


def logs(control: Control, target: str | ServerInfo, lines: int = 40) -> LogsOutcome:
    from sparktop.servers.registry import tail

    path = log_path(control, target)
    name = target.name if isinstance(target, ServerInfo) else target
    return LogsOutcome(name, path, tuple(tail(path, lines, max_bytes=256 * 1024)))


@dataclass(frozen=True)
class ExportOutcome:
    name: str
    """The catalog entry's name, or the served name of a server no entry describes."""
    document: dict[str, Any]

    @property
    def title(self) -> str:
        return f"OpenCode provider for {self.name}"

    def text(self) -> str:
        import json

        return json.dumps(self.document, indent=2)


def export_opencode(
    control: Control, target: str | ServerInfo, *, host: str | None = None
) -> ExportOutcome:
    """An OpenCode provider entry for a catalog entry (by name) or a running server; a server
    no entry describes (one started by hand) is described by what it reports."""
    from sparktop.servers.export import opencode_entry, opencode_for_server

    server: ServerInfo | None = None
    if isinstance(target, ServerInfo):
        server = target
        entry = control.catalog.get(target.catalog_name or "")
    else:
        try:
            entry = resolve_entry(control, target)
        except ActionError as unknown:
            try:
                server = resolve_server(control, target)
            except AmbiguousServer:
                raise
            except ActionError:
                raise unknown from None
            entry = control.catalog.get(server.catalog_name or "")
    if entry is not None:
        return ExportOutcome(entry.name, opencode_entry(entry, host=host))
    assert server is not None  # no entry: the target was a server
    if server.port is None:
        raise ActionError(f"{server.name} has no known port")
    return ExportOutcome(server.name, opencode_for_server(server, host=host))


def ready(server: ServerInfo) -> ServerInfo:
    """`server` if it can take requests now, else an ActionError saying its state."""
    if server.url is None or server.health != READY:
        raise ActionError(f"{server.name} is not ready ({server.health})")
    return server
