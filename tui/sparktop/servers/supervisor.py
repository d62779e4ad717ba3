"""Serve and stop: the exclusive switch, with a fit check, a port check and clean-up on failure.

A served engine runs in its own session and process group (so it survives sparktop and the
SSH session, and so stopping it reaches all its workers), with its output in a log file under
the state dir. Its parent is a small waiter that reaps it and records how it ended (exits.py
says why). Every process sparktop starts is reaped as soon as it ends: no zombies. Nothing goes
through a shell: argv lists only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.files import model_path
from sparktop.catalog.fit import NO_FIT, UNKNOWN, FitVerdict, check_fit
from sparktop.engines import EngineError, ServeRequest, adapter, llama_rpc
from sparktop.probes import ProbeRoots
from sparktop.probes.memory import read_memory
from sparktop.servers import http
from sparktop.servers.containers import container_name, run_argv, run_runtime
from sparktop.servers.evict import Eviction
from sparktop.servers.exits import ExitCauses, read_exit
from sparktop.servers.info import CRASHED, ServerInfo
from sparktop.servers.ports import port_free, port_owner
from sparktop.servers.procscan import read_stat
from sparktop.servers.registry import ManagedServer, Registry, process_matches, tail
from sparktop.servers.rpc_workers import listening_locally
from sparktop.servers.waiter import WaiterError, reap_when_done
from sparktop.servers.waiter import take as take_waiter


class ServeError(Exception):
    """Why a serve or stop did not happen; str() is one line, `log_tail` the evidence."""

    def __init__(self, message: str, log_tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail)


# stages of a serve or stop, in the words the progress line and the CLI show
STOPPING, STARTING, LOADING, READY, FAILED, STOPPED = (
    "stopping", "starting", "loading", "ready", "failed", "stopped",
)  # fmt: skip


@dataclass(frozen=True)
class ServeEvent:
    """Progress of a serve or stop, for the TUI's progress line and the CLI's output."""

    stage: str  # stopping, starting, loading, ready, failed, stopped
    message: str
    elapsed_s: float = 0.0
    log_tail: tuple[str, ...] = ()


Progress = Callable[[ServeEvent], None]


@dataclass(frozen=True)
class ServePlan:
    entry: ModelEntry
    fit: FitVerdict
    conflicts: tuple[ServerInfo, ...]
    """Running servers that must stop first (same exclusive group, or the same port)."""
    port_blocker: str | None = None
    """A process that is not an inference server holds the port: serving is refused."""
    already_running: ServerInfo | None = None
    evict: tuple[Eviction, ...] = ()
    """It does not fit: the servers whose memory would make it fit, to stop first when the
    user agrees (the action layer chooses them; `servers.evict`)."""
    evict_fit: FitVerdict | None = None
    """The fit once `evict` is stopped."""
    no_room: str | None = None
    """It does not fit and stopping servers would not make it: why, with the numbers."""

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.conflicts) or self.fit.verdict in (NO_FIT, UNKNOWN)


@dataclass(frozen=True)
class StopResult:
    name: str
    pid: int
    forced: bool
    port_freed: bool
    memory_returned_bytes: int | None
    elapsed_s: float


def _quiet(_: ServeEvent) -> None:
    return None


def build_argv(entry: ModelEntry, configured: dict[str, Sequence[str]] | None = None) -> list[str]:
    """The exact argv that serves `entry` (no shell, no quoting), as its engine's adapter
    writes it; `configured` is config.yaml's `engines:` (engine → argv prefix). With
    serve.container, the engine's own program runs in the image through Docker or Podman."""
    engine = adapter(entry.engine)
    serve = entry.serve
    box = serve.container
    try:
        model = engine.model_argument(entry, model_path(entry))
        binary = list(engine.programs[:1]) if box else engine.binary(configured or {})
    except EngineError as exc:
        raise ServeError(str(exc)) from None
    request = ServeRequest(
        binary=tuple(binary),
        model=model,
        served_name=serve.served_name,
        host="0.0.0.0" if box else serve.host,
        port=serve.port,
        context=serve.context,
        args=serve.args,
        template=serve.argv,
        rpc=entry.rpc.endpoints if entry.rpc is not None else (),
    )
    argv = engine.serve_argv(request)
    if box is None:
        return argv
    mounts = [f"{entry.local_dir}:{entry.local_dir}:ro"] if entry.local_dir else []
    return run_argv(box, entry_name=entry.name, inner=argv, host=serve.host, port=serve.port,
                    env=serve.env, mounts=mounts)  # fmt: skip


def _freed_by(server: ServerInfo, unified: bool) -> int:
    held = server.rss_bytes or 0
    if unified:
        held += server.gpu_bytes or 0
    return held


@dataclass
class Supervisor:
    registry: Registry = field(default_factory=Registry)
    roots: ProbeRoots = field(default_factory=ProbeRoots.from_env)
    engines: dict[str, Sequence[str]] = field(default_factory=dict)
    stop_timeout_s: float = 15.0
    poll_s: float = 0.25
    remote: llama_rpc.RemoteRunner | None = None
    """Runs a command on a configured host, for RPC workers started there: what
    `sparktop.fleet.rpc.ssh_runner(hosts)` builds (handed in from above), or a stand-in."""
    rpc_listen_timeout_s: float = 30.0
    _children: dict[int, subprocess.Popen] = field(default_factory=dict)
    """Processes started here directly (local RPC workers), by PID."""
    _waiters: dict[int, subprocess.Popen] = field(default_factory=dict)
    """The waiter of each server started here, by the server's PID."""

    # -- planning -------------------------------------------------------------------------

    def plan(
        self,
        entry: ModelEntry,
        running: Sequence[ServerInfo],
        catalog_entries: dict[str, ModelEntry],
        *,
        unified: bool = True,
    ) -> ServePlan:
        alive = [s for s in running if s.health != CRASHED and s.pid is not None]
        already = next(
            (
                s
                for s in alive
                if s.port == entry.serve.port
                and (s.catalog_name == entry.name or s.name == entry.serve.served_name)
            ),
            None,
        )
        conflicts = []
        group = entry.serve.exclusive
        for server in alive:
            if server is already:
                continue
            other = catalog_entries.get(server.catalog_name or "")
            same_group = group is not None and other is not None and other.serve.exclusive == group
            if same_group or server.port == entry.serve.port:
                conflicts.append(server)
        meminfo = read_memory(self.roots.proc)
        freed = sum(_freed_by(s, unified) for s in conflicts)
        fit = check_fit(
            [entry],
            available_bytes=meminfo.available_bytes,
            pool_total_bytes=meminfo.total_bytes,
            freed_bytes=freed,
        )
        blocker = None
        conflict_ports = {s.port for s in conflicts}
        if (
            already is None
            and entry.serve.port not in conflict_ports
            and not port_free(entry.serve.host, entry.serve.port)
        ):
            owner = port_owner(self.roots.proc, entry.serve.port)
            who = f"pid {owner[0]} ({owner[1]})" if owner else "another process"
            blocker = f"port {entry.serve.port} is already in use by {who}"
        return ServePlan(entry, fit, tuple(conflicts), blocker, already)

    # -- serving --------------------------------------------------------------------------

    def serve(
        self,
        plan: ServePlan,
        *,
        force: bool = False,
        progress: Progress = _quiet,
        ready_timeout_s: float | None = None,
    ) -> ManagedServer:
        """Stop the conflicts, start the engine, wait until it serves the name. Raise ServeError."""
        entry = plan.entry
        if plan.already_running is not None:
            raise ServeError(
                f"{entry.name} is already running (pid {plan.already_running.pid}, "
                f"port {plan.already_running.port})"
            )
        if plan.port_blocker:
            raise ServeError(plan.port_blocker)
        if plan.fit.verdict == NO_FIT and not force:
            raise ServeError(
                f"{entry.name} does not fit: {plan.fit.summary()}; use --force to serve anyway"
            )
        argv = build_argv(entry, self.engines)
        started = time.monotonic()
        for server in plan.conflicts:
            progress(ServeEvent(STOPPING, f"stopping {server.name} (pid {server.pid}) first", 0.0))
            self.stop(server, progress=progress)
        if not port_free(entry.serve.host, entry.serve.port):
            owner = port_owner(self.roots.proc, entry.serve.port)
            who = f"pid {owner[0]} ({owner[1]})" if owner else "another process"
            raise ServeError(f"port {entry.serve.port} is still in use by {who}")
        workers = self._start_rpc_workers(entry, progress)
        try:
            record = self._spawn(entry, argv, workers)
            progress(ServeEvent(STARTING, f"started {argv[0]} as pid {record.pid}", 0.0))
            timeout = ready_timeout_s or entry.serve.ready_timeout_s
            self._wait_ready(record, timeout, started, progress)
        except ServeError:
            self._stop_rpc_workers(workers, progress)  # no orphans when the head fails
            raise
        except OSError as exc:  # the log or the state dir cannot be written (disk full)
            self._stop_rpc_workers(workers, progress)
            where = f" ({exc.filename})" if exc.filename else ""
            raise ServeError(f"cannot start {entry.name}: {exc.strerror or exc}{where}") from None
        return record

    def _spawn(
        self, entry: ModelEntry, argv: list[str], rpc_workers: Sequence[dict] = ()
    ) -> ManagedServer:
        logs = self.registry.logs_dir()
        logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log_path = logs / f"{entry.name}-{stamp}.log"
        env = dict(os.environ)
        env.update(dict(entry.serve.env))
        with open(log_path, "ab") as log:
            log.write(f"# sparktop: {' '.join(argv)}\n".encode())
        pid, start_ticks = self._start_waited(argv, env, log_path)
        record = ManagedServer(
            name=entry.name,
            served_name=entry.serve.served_name,
            engine=entry.engine,
            pid=pid,
            pgid=pid,
            start_ticks=start_ticks,
            host=entry.serve.host,
            port=entry.serve.port,
            argv=argv,
            log_path=str(log_path),
            proxy_port=entry.serve.proxy.port if entry.serve.proxy else None,
            rpc_workers=[dict(w) for w in rpc_workers],
        )
        box = entry.serve.container
        if box is not None:  # stop, logs and re-adoption go through the runtime, by name
            record.container_name = container_name(entry.name)
            record.container_runtime = box.runtime
        try:
            self.registry.prune()  # ended records are kept for their log tails, not forever
            self.registry.add(record)
        except OSError as exc:
            # unrecorded, it would be a server nobody knows sparktop started: stop it now
            self._signal_and_wait(pid, pid, False, record.start_ticks)
            raise ServeError(
                f"cannot record {entry.name} in {self.registry.path}: {exc.strerror or exc}; "
                f"stopped it (pid {pid}) rather than leave it untracked"
            ) from None
        return record

    def _start_waited(self, argv: list[str], env: dict[str, str], log: Path) -> tuple[int, int]:
        """Start `argv` under a waiter, its output appended to `log`: (server PID, start ticks)."""
        try:
            waiter = take_waiter()
            pid, ticks = waiter.start(argv, env, self.registry.exits_dir(), log)
        except OSError as exc:
            raise ServeError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        except WaiterError as exc:
            raise ServeError(f"cannot start {argv[0]}: {exc}") from None
        self._waiters[pid] = waiter.process
        return pid, ticks

    def _gone(self, pid: int, start_ticks: int) -> bool:
        """Has the process ended (and been reaped, when it is one sparktop started)?"""
        popen = self._children.get(pid)
        if popen is not None:
            return popen.poll() is not None
        waiter = self._waiters.get(pid)
        if waiter is not None and waiter.poll() is None:
            return False  # its waiter still waits for it
        return not process_matches(self.roots.proc, pid, start_ticks)

    def _alive(self, record: ManagedServer) -> bool:
        return not self._gone(record.pid, record.start_ticks)

    def _exit_code(self, record: ManagedServer, wait_s: float = 2.0) -> int | None:
        """The exit status of a server that ended (negative: the signal), once its waiter
        wrote it; None when unknown."""
        waiter = self._waiters.get(record.pid)
        if waiter is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                waiter.wait(timeout=wait_s)
        ended = read_exit(self.registry.exits_dir(), record.pid, record.start_ticks)
        return ended.returncode if ended is not None else None

    def _wait_ready(
        self, record: ManagedServer, timeout: float, started: float, progress: Progress
    ) -> None:
        deadline = time.monotonic() + timeout
        # one kept-alive connection on the standard library (no httpx import on this path),
        # asked often at first and less as loading drags on: ready is noticed within ~20 ms
        conn = http.Connection(http.host_for_url(record.host).strip("[]"), record.port)
        try:
            self._poll_ready(record, conn, (timeout, deadline), started, progress)
        finally:
            conn.close()

    def _poll_ready(
        self,
        record: ManagedServer,
        conn: http.Connection,
        limit: tuple[float, float],
        started: float,
        progress: Progress,
    ) -> None:
        """Ask /health (then /v1/models) until ready, the engine exits or the deadline."""
        timeout, deadline = limit
        base = http.base_url(record.host, record.port)
        health_path = adapter(record.engine).health_path
        last_message = ""
        polls = 0
        while True:
            elapsed = time.monotonic() - started
            if not self._alive(record):
                code = self._exit_code(record)
                self.registry.update(record.pid, exit_code=code, ended_at=time.time())
                lines = tail(record.log_path, 15)
                how = ExitCauses(self.registry.exits_dir()).of(record.pid, record.start_ticks, code)
                progress(ServeEvent(FAILED, how, elapsed, tuple(lines)))
                raise ServeError(
                    f"{record.name} {how} while loading (log: {record.log_path})", lines
                )
            reply = conn.get(health_path, timeout=2.0)
            if reply.status == 200:
                models = conn.get("/v1/models", timeout=5.0).json()
                ids = []
                if isinstance(models, dict) and isinstance(models.get("data"), list):
                    ids = [m.get("id") for m in models["data"] if isinstance(m, dict)]
                if record.served_name in ids:
                    progress(ServeEvent(READY, f"{record.served_name} ready on {base}", elapsed))
                    return
                message = f"/health OK; waiting for /v1/models to list {record.served_name}"
            elif reply.status == 503:
                message = "loading (/health 503)"
            elif reply.status is None:
                message = f"waiting for port {record.port} ({reply.error})"
            else:
                message = f"/health answered HTTP {reply.status}"
            lines = tuple(tail(record.log_path, 4))
            if message != last_message or lines:
                progress(ServeEvent(LOADING, message, elapsed, lines))
                last_message = message
            if time.monotonic() >= deadline:
                lines = tuple(tail(record.log_path, 15))
                progress(ServeEvent(FAILED, f"not ready after {timeout:.0f} s", elapsed, lines))
                self._signal_and_wait(record.pid, record.pgid, True, record.start_ticks)
                self.registry.update(
                    record.pid, stop_requested=True, ended_at=time.time(),
                    exit_code=self._exit_code(record),
                )  # fmt: skip
                raise ServeError(
                    f"{record.name} was not ready after {timeout:.0f} s; stopped it "
                    f"(log: {record.log_path})",
                    lines,
                )
            time.sleep(min(self.poll_s, 0.02 * 1.5**polls))
            polls += 1

    # -- llama.cpp RPC workers ------------------------------------------------------------

    def _start_rpc_workers(self, entry: ModelEntry, progress: Progress) -> list[dict]:
        """Make sure each RPC worker listens; start those asked for. Records for the registry."""
        if entry.rpc is None:
            return []
        done: list[dict] = []
        try:
            for worker in entry.rpc.workers:
                done.append(self._ensure_worker(entry, worker, progress))
        except ServeError:
            self._stop_rpc_workers(done, progress)
            raise
        return done

    def _ensure_worker(self, entry: ModelEntry, worker: Any, progress: Progress) -> dict:
        endpoint = worker.endpoint
        local = llama_rpc.is_local(worker)
        if local and worker.host is None and not llama_rpc.address_is_local(worker.address):
            local = False  # no host named, but the address is another machine's
        listening = listening_locally(endpoint, self.roots.proc) if local else None
        if listening is None:
            listening = llama_rpc.endpoint_listening(endpoint, timeout=2.0)
        info: dict = {"endpoint": endpoint, "host": worker.host, "started": False,
                      "remote": not local, "pid": None, "pgid": None, "start_ticks": 0,
                      "log_path": None}  # fmt: skip
        if listening:
            progress(ServeEvent(STARTING, f"rpc worker {endpoint}: already listening", 0.0))
            return info
        if not worker.start:
            raise ServeError(f"rpc worker {endpoint} is not listening (start: false)")
        if not local and worker.host is None:
            raise ServeError(
                f"rpc worker {endpoint} is on another machine: name its host: "
                "(configured in config.yaml) so sparktop can start it over SSH"
            )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log_name = f"{entry.name}-rpc-{worker.port}-{stamp}.log"
        if local:
            info.update(self._spawn_local_worker(worker, self.registry.logs_dir() / log_name))
        else:
            info.update(self._spawn_remote_worker(worker, log_name))
        where = "" if local else f" on {worker.host}"
        progress(ServeEvent(STARTING, f"rpc worker {endpoint}: started pid {info['pid']}"
                            f"{where}, listening", 0.0))  # fmt: skip
        return info

    def _spawn_local_worker(self, worker: Any, log_path: Path) -> dict:
        binary = worker.binary or llama_rpc.find_rpc_server(self.engines)
        if binary is None:
            raise ServeError(
                f"rpc worker {worker.endpoint}: ggml-rpc-server not found next to llama-server "
                "or on PATH (build llama.cpp with -DGGML_RPC=ON, or set the worker's binary:)"
            )
        argv = llama_rpc.worker_argv(binary, worker)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"# sparktop: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                )  # fmt: skip
            except OSError as exc:
                raise ServeError(
                    f"rpc worker {worker.endpoint}: cannot start {binary}: {exc.strerror or exc}"
                ) from None
        self._children[popen.pid] = popen
        reap_when_done(popen)
        stat = read_stat(self.roots.proc, popen.pid)
        info = {"started": True, "pid": popen.pid, "pgid": popen.pid, "log_path": str(log_path),
                "start_ticks": stat.start_ticks if stat else 0}  # fmt: skip
        deadline = time.monotonic() + self.rpc_listen_timeout_s
        while not listening_locally(worker.endpoint, self.roots.proc):
            code = popen.poll()
            if code is not None:
                lines = tail(log_path, 10)
                last = f": {lines[-1]}" if lines else ""
                raise ServeError(
                    f"rpc worker {worker.endpoint} exited with code {code} before listening"
                    f"{last} (log: {log_path})",
                    lines,
                )
            if time.monotonic() >= deadline:
                self._signal_and_wait(popen.pid, popen.pid, False, info["start_ticks"])
                raise ServeError(
                    f"rpc worker {worker.endpoint} was not listening after "
                    f"{self.rpc_listen_timeout_s:.0f} s; stopped it (log: {log_path})",
                    tail(log_path, 10),
                )
            time.sleep(0.05)
        return info

    def _runner(self) -> llama_rpc.RemoteRunner:
        """How a command runs on a configured host: the runner handed in, else SSH."""
        if self.remote is None:
            raise ServeError("no way to reach other hosts here (no hosts: in config.yaml)")
        return self.remote

    def _spawn_remote_worker(self, worker: Any, log_name: str) -> dict:
        runner = self._runner()
        argv = llama_rpc.worker_argv(worker.binary or llama_rpc.BINARIES[0], worker)
        log_path = f".local/state/sparktop/logs/{log_name}"  # under the remote user's home
        result = runner(worker.host, llama_rpc.remote_start_argv(argv, log_path), 30.0)
        lines = [line for line in (result.stdout or "").splitlines() if line.strip()]
        if result.reason or result.returncode != 0 or not lines or not lines[-1].isdigit():
            why = result.reason or (result.stderr or "").strip()[-200:] or "no PID printed"
            raise ServeError(f"rpc worker {worker.endpoint}: cannot start it on {worker.host}: "
                             f"{why}")  # fmt: skip
        info = {"started": True, "pid": int(lines[-1]), "pgid": int(lines[-1]),
                "log_path": f"{worker.host}:~/{log_path}"}  # fmt: skip
        deadline = time.monotonic() + self.rpc_listen_timeout_s
        while not llama_rpc.endpoint_listening(worker.endpoint, timeout=1.0):
            if time.monotonic() >= deadline:
                runner(worker.host, llama_rpc.remote_stop_argv(info["pid"], self.stop_timeout_s),
                       self.stop_timeout_s + 30)  # fmt: skip
                raise ServeError(
                    f"rpc worker {worker.endpoint} on {worker.host} was not listening after "
                    f"{self.rpc_listen_timeout_s:.0f} s; stopped it (log: {info['log_path']})"
                )
            time.sleep(0.2)
        return info

    def _stop_rpc_workers(self, workers: Sequence[dict], progress: Progress = _quiet) -> None:
        """Stop the workers sparktop started (by PID/PGID, never by name); leave the rest."""
        for worker in workers:
            pid = worker.get("pid")
            if not worker.get("started") or not isinstance(pid, int):
                continue
            endpoint = worker.get("endpoint", "?")
            if worker.get("remote"):
                runner = self._runner()
                host = worker.get("host") or ""
                done = runner(host, llama_rpc.remote_stop_argv(pid, self.stop_timeout_s),
                              self.stop_timeout_s + 30)  # fmt: skip
                if done.reason or done.returncode != 0:
                    why = done.reason or f"exit {done.returncode}"
                    progress(ServeEvent(FAILED, f"could not stop rpc worker {endpoint} "
                                        f"(pid {pid}) on {host}: {why}", 0.0))  # fmt: skip
                    continue
            else:
                ticks = int(worker.get("start_ticks") or 0)
                popen = self._children.get(pid)
                if popen is None and not process_matches(self.roots.proc, pid, ticks):
                    continue  # gone already (or the PID now belongs to someone else)
                self._signal_and_wait(pid, worker.get("pgid") or pid, False, ticks)
            progress(ServeEvent(STOPPING, f"stopped rpc worker {endpoint} (pid {pid})", 0.0))

    # -- stopping -------------------------------------------------------------------------

    def stop(self, server: ServerInfo, *, progress: Progress = _quiet) -> StopResult:
        """SIGTERM to the server's process group, SIGKILL after the timeout; then verify."""
        if server.pid is None:
            # a crashed managed server: just forget the record
            for record in self.registry.load():
                if record.served_name == server.name and record.port == server.port:
                    self._stop_rpc_workers(record.rpc_workers, progress)
                    self.registry.remove(record.pid)
            raise ServeError(f"{server.name} is not running (record cleared)")
        started = time.monotonic()
        before = read_memory(self.roots.proc).available_bytes
        stat = read_stat(self.roots.proc, server.pid)
        if stat is None:
            raise ServeError(f"pid {server.pid} is gone already")
        record = self._record_of(server, stat.start_ticks)
        if record is not None and record.pid != server.pid:
            return self._stop_container_alone(server, record, stat.start_ticks, progress)
        if record is not None:
            self.registry.update(record.pid, stop_requested=True)
        client_ended = False
        if record is not None and record.stop_argv:
            # its container first, by name; the attached `docker run` client then ends too
            progress(ServeEvent(STOPPING, f"running {' '.join(record.stop_argv)}", 0.0))
            failed = run_runtime(record.stop_argv)
            if failed is not None:
                progress(ServeEvent(STOPPING, f"{failed}; signalling the client instead", 0.0))
            else:
                client_ended = self._ends_alone(server.pid, stat.start_ticks, 5.0)
        # Signal the whole group only when the server leads it (sparktop's own starts do);
        # an outside server that shares its shell's group gets signalled alone.
        use_group = record is not None or stat.pgid == server.pid
        forced = False
        if not client_ended:
            what = "its client" if record is not None and record.stop_argv else server.name
            progress(ServeEvent(STOPPING, f"SIGTERM to {what} (pid {server.pid})", 0.0))
            forced = self._signal_and_wait(
                server.pid, stat.pgid if use_group else None, False, stat.start_ticks,
                extra=server.children,
            )  # fmt: skip
        if forced:
            progress(ServeEvent(STOPPING, "did not exit in time: sent SIGKILL", 0.0))
        freed = _port_freed(server)
        after = read_memory(self.roots.proc).available_bytes
        if record is not None:
            self.registry.update(record.pid, ended_at=time.time(),
                                 exit_code=self._exit_code(record))  # fmt: skip
        result = StopResult(
            name=server.name,
            pid=server.pid,
            forced=forced,
            port_freed=freed,
            memory_returned_bytes=after - before,
            elapsed_s=time.monotonic() - started,
        )
        if record is not None:
            self._stop_rpc_workers(record.rpc_workers, progress)
        progress(ServeEvent(STOPPED, f"stopped {server.name}", result.elapsed_s))
        return result

    def _ends_alone(self, pid: int, start_ticks: int, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for a process to end by itself; True if it did."""
        deadline = time.monotonic() + timeout_s
        while not self._gone(pid, start_ticks):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _record_of(self, server: ServerInfo, start_ticks: int) -> ManagedServer | None:
        """The record of the server's row: of this very process (PID and start time: a PID
        may have been reused since), or (a serve.container server whose `docker run` client
        was killed on its own) of the container it runs in, by name, started after the
        record was made."""
        records = self.registry.load()
        found = next(
            (r for r in records if r.pid == server.pid and r.start_ticks == start_ticks), None
        )
        box = server.container
        if found is not None or box is None or not box.name:
            return found
        return next(
            (r for r in records
             if (r.container_runtime, r.container_name) == (box.runtime, box.name)
             and r.ended_at is None and not r.stop_requested
             and start_ticks >= r.start_ticks),
            None,
        )  # fmt: skip

    def _stop_container_alone(
        self, server: ServerInfo, record: ManagedServer, ticks: int, progress: Progress
    ) -> StopResult:
        """Stop a server sparktop runs in a container whose client is gone: only through the
        runtime, by the container's name (the process inside gets no signal from here)."""
        assert server.pid is not None and record.stop_argv
        started = time.monotonic()
        before = read_memory(self.roots.proc).available_bytes
        progress(ServeEvent(STOPPING, f"running {' '.join(record.stop_argv)}", 0.0))
        failed = run_runtime(record.stop_argv)
        if failed is not None:
            raise ServeError(f"{failed}; {server.name} keeps running (nothing signalled)")
        if not self._ends_alone(server.pid, ticks, self.stop_timeout_s + 5):
            raise ServeError(
                f"{' '.join(record.stop_argv)} ran, but {server.name} (pid {server.pid}) still "
                "runs; see the runtime's own state"
            )
        freed = _port_freed(server)
        # only now: a container still running stays this record's (managed) row
        self.registry.update(record.pid, stop_requested=True, ended_at=time.time())
        result = StopResult(
            name=server.name,
            pid=server.pid,
            forced=False,
            port_freed=freed,
            memory_returned_bytes=read_memory(self.roots.proc).available_bytes - before,
            elapsed_s=time.monotonic() - started,
        )
        progress(ServeEvent(STOPPED, f"stopped {server.name}", result.elapsed_s))
        return result

    def _signal_and_wait(
        self,
        pid: int,
        pgid: int | None,
        kill_now: bool,
        start_ticks: int,
        extra: Sequence[int] = (),
    ) -> bool:
        """TERM (or KILL) the group or the pids; KILL after the timeout. True if forced."""

        def send(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pgid is not None:
                    os.killpg(pgid, sig)
                else:
                    for target in (pid, *extra):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(target, sig)

        send(signal.SIGKILL if kill_now else signal.SIGTERM)
        if self._ends_alone(pid, start_ticks, self.stop_timeout_s):
            return kill_now
        send(signal.SIGKILL)
        self._ends_alone(pid, start_ticks, 5.0)
        return True


def _port_freed(server: ServerInfo, timeout_s: float = 5.0) -> bool:
    """Wait up to `timeout_s` for the stopped server's port to be free; True when it is (or
    it had none)."""
    if not server.port:
        return True
    deadline = time.monotonic() + timeout_s
    while not port_free(server.host, server.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return port_free(server.host, server.port)
