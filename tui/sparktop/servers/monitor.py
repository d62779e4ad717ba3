"""Discover and poll every inference server on the box: one call, one tuple of ServerInfo.

Discovery is the process table (every server, whoever started it) plus sparktop's own records
(so a managed server that died shows as crashed, with its log tail). Each server is polled on
a thread pool with short timeouts, so one hung server never delays the others or the screen.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sparktop.catalog.loader import Catalog
from sparktop.engines import SERVER, EngineAdapter, EngineMemo, Launch, adapter
from sparktop.probes import ProbeRoots
from sparktop.servers import http
from sparktop.servers.containers import Container, container_of
from sparktop.servers.exits import UNKNOWN, ExitCauses
from sparktop.servers.info import (
    CRASHED,
    ERROR,
    LOADING,
    NOT_RESPONDING,
    READY,
    STARTING,
    ProxyStatus,
    ServerInfo,
)
from sparktop.servers.metrics import RateTracker, first, parse, totals
from sparktop.servers.netns import (
    Published,
    Reach,
    namespace_addresses,
    own_namespace,
    published_from_argv,
    reach,
)
from sparktop.servers.printable import printable
from sparktop.servers.procscan import (
    ProcessScanner,
    ServerProcess,
    listening_ports,
    listening_sockets,
    net_namespace,
    process_age,
    read_rss,
    read_stat,
)
from sparktop.servers.registry import ManagedServer, Registry, process_matches, tail
from sparktop.servers.rpc_workers import worker_statuses

MODELS_EVERY_S = 15.0
PROXY_EVERY_S = 10.0
PORTS_EVERY_S = 30.0
"""Listening ports are re-read from /proc/<pid>/net/tcp this often (or when not yet known)."""
QUICK_S = 0.1
"""A server whose last poll took less than this is polled in line, not on the pool: handing
healthy local servers to threads costs more CPU than asking them (tests/bench/tui_budget.py).
A new, slow or hung one stays on the pool, so it never holds up the others."""
LOOPBACK = ("127.", "::1", "localhost")


@dataclass
class _PollState:
    rates: RateTracker = field(default_factory=RateTracker)
    models: tuple[str, ...] = ()
    models_at: float = 0.0
    context: int | None = None
    metrics_supported: bool = True
    last_health: str = ""
    proxy: ProxyStatus | None = None
    proxy_at: float = 0.0
    conn: http.Connection | None = None
    memo: EngineMemo = field(default_factory=EngineMemo)
    """The engine adapter's own memory of this server (e.g. when it last asked /slots)."""
    took_s: float | None = None
    cpu: tuple[float, float, tuple[int, ...]] | None = None
    """The last CPU reading: (CPU seconds, monotonic time, the processes summed)."""


@dataclass(frozen=True)
class _Target:
    """A server to poll: where it listens and what we know about it before asking."""

    pid: int | None
    pgid: int | None
    engine: str
    host: str
    port: int | None
    served_name: str
    managed: ManagedServer | None
    process: ServerProcess | None
    proxy_port: int | None
    proxy_host: str
    proxy_needs_token: bool
    proxy_token_env: str | None
    catalog_name: str | None
    reachable_via: str | None = None
    """In another network namespace: how it is reached, or why it cannot be."""
    container: Container | None = None
    unreachable: bool = False


def is_loopback(host: str) -> bool:
    return host.startswith(LOOPBACK)


class ServerMonitor:
    def __init__(
        self,
        *,
        catalog: Catalog | None = None,
        registry: Registry | None = None,
        roots: ProbeRoots | None = None,
        timeout: float = 1.0,
        workers: int = 8,
    ) -> None:
        self.roots = roots or ProbeRoots.from_env()
        self.scanner = ProcessScanner(self.roots)
        self.catalog = catalog or Catalog()
        self.registry = registry or Registry()
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparktop-poll")
        self._states: dict[tuple[int | None, int | None], _PollState] = {}
        self._ports: dict[tuple[int, int], list[tuple[str, int]] | None] = {}
        self._ports_at = 0.0
        self.causes = ExitCauses(self.registry.exits_dir())
        self._own_ns = own_namespace()
        self._published: list[Published] = []
        self._containers: dict[tuple[int, int], Container | None] = {}
        """How crashed managed servers ended, each worked out once."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- discovery ------------------------------------------------------------------------

    def targets(self) -> list[_Target]:
        tables: dict[object, dict | None] = {}  # socket tables read in this discovery
        processes = self.scanner.scan()
        self._published = [
            p for argv in self.scanner.published.values() if (p := published_from_argv(argv))
        ]
        managed = self.registry.load()
        by_pid = {m.pid: m for m in managed}
        attached = self._attached(processes, managed, by_pid)
        live = {pid for pid, m in attached.items() if self._alive(m)}
        clients = {attached[pid].pid for pid in live}
        out: list[_Target] = []
        seen: set[int] = set()
        for proc in processes:
            if proc.pid in clients:  # the `docker run` client: its container's row has it
                seen.add(proc.pid)
                continue
            record = attached.get(proc.pid) or _same_process(by_pid.get(proc.pid), proc)
            if record is None:  # started by sparktop through a wrapper? match the group
                record = next(
                    (m for m in managed
                     if m.pgid == proc.pgid == m.pid and m.ended_at is None and self._alive(m)),
                    None,
                )  # fmt: skip
            if proc.pid in live and record is not None:
                # the row is the record's (stop goes through it), the facts the container's
                target = self._target(record.pid, record.pgid, proc.launch, proc, record, tables)
            else:
                target = self._target(proc.pid, proc.pgid, proc.launch, proc, record, tables)
            out.append(target)
            seen.add(proc.pid)
            if record is not None:
                seen.add(record.pid)
        for record in managed:
            if record.pid in seen or (record.ended_at is not None and record.stop_requested):
                continue
            alive = self._alive(record)
            if not alive and record.stop_requested:
                continue
            launch = Launch(
                engine=record.engine,
                role=SERVER,
                port=record.port,
                host=record.host,
                served_name=record.served_name,
            )
            out.append(
                self._target(record.pid if alive else None, record.pgid, launch, None, record)
            )
        return out

    def _attached(
        self,
        processes: list[ServerProcess],
        managed: list[ManagedServer],
        by_pid: dict[int, ManagedServer],
    ) -> dict[int, ManagedServer]:
        """Servers sparktop runs through serve.container: the process in the container named
        as a record says (`sparktop-ENTRY`, same runtime) → that record, while the record is
        not stopped. Its row is the record's own process (the attached `docker run` client)
        while that lives, else the server in the container (a client killed on its own):
        either way the row is managed and stop goes through the runtime, by name."""
        boxed = {
            (m.container_runtime, m.container_name): m
            for m in managed
            if m.container_name and m.container_runtime and m.ended_at is None
            and not m.stop_requested
        }  # fmt: skip
        if not boxed:
            return {}
        out: dict[int, ManagedServer] = {}
        for proc in processes:
            box = None if proc.pid in by_pid else self._container(proc)
            record = boxed.get((box.info.runtime, box.info.name)) if box else None
            # a container of that name started before the record is not the one it ran
            if record is not None and proc.start_ticks >= record.start_ticks:
                out[proc.pid] = record
        return out

    def _alive(self, record: ManagedServer) -> bool:
        return process_matches(self.roots.proc, record.pid, record.start_ticks)

    def _target(
        self,
        pid: int | None,
        pgid: int | None,
        launch: Launch,
        proc: ServerProcess | None,
        record: ManagedServer | None,
        tables: dict[object, dict | None] | None = None,
    ) -> _Target:
        port = record.port if record else launch.port
        host = record.host if record else (launch.host or "127.0.0.1")
        via, unreachable, box = None, False, None
        if proc is not None:
            box = self._container(proc)
            ports = self._listening(proc, tables)
            if ports and port not in {p for _a, p in ports}:
                host, port = ports[0]
            bound = next((a for a, p in ports or () if p == port), host)
            away = self._elsewhere(proc.pid, (bound, port) if port else None, box)
            if away is not None:
                via, unreachable = away.text, away.host is None
                if away.host is not None:
                    host, port = away.host, away.port
        served = (record.served_name if record else None) or launch.served_name or "?"
        entry = None
        if record is not None:
            entry = self.catalog.get(record.name)
        if entry is None and launch.served_name:
            entry = next(
                (
                    e
                    for e in self.catalog
                    if e.serve.served_name == launch.served_name and e.serve.port == port
                ),
                None,
            )
        proxy = entry.serve.proxy if entry else None
        return _Target(
            pid=pid,
            pgid=pgid,
            engine=launch.engine,
            host=host,
            port=port,
            served_name=served,
            managed=record,
            process=proc,
            proxy_port=proxy.port if proxy else (record.proxy_port if record else None),
            proxy_host=proxy.host if proxy else "127.0.0.1",
            proxy_needs_token=proxy.requires_token if proxy else True,
            proxy_token_env=proxy.token_env if proxy else None,
            catalog_name=entry.name if entry else (record.name if record else None),
            reachable_via=via,
            unreachable=unreachable,
            container=box,
        )

    def _container(self, proc: ServerProcess) -> Container | None:
        """The container a server runs in, worked out once per process."""
        key = (proc.pid, proc.start_ticks)
        if key not in self._containers:
            self._containers[key] = container_of(self.roots.proc, proc.pid, self.roots.root)
        return self._containers[key]

    def _elsewhere(
        self, pid: int, listen: tuple[str, int] | None, box: Container | None
    ) -> Reach | None:
        """How to reach a server in another network namespace; None: it is in ours."""
        namespace = net_namespace(self.roots.proc, pid)
        if namespace is None or namespace == self._own_ns or listen is None:
            return None
        addresses = namespace_addresses(self.roots.proc, pid)
        where = "container" if box is not None else "its network namespace"
        published = [*(box.published if box else ()), *self._published]  # its own first
        return reach(namespace, listen, addresses, published, where=where)

    def _listening(
        self, proc: ServerProcess, tables: dict[object, dict | None] | None
    ) -> list[tuple[str, int]] | None:
        """A server's listening ports, cached: reading /proc/<pid>/net/tcp is the dear part.
        All servers' ports are read again together every PORTS_EVERY_S, sharing one read of
        the socket table per network namespace (`tables`, kept for one discovery)."""
        now = time.monotonic()
        if now - self._ports_at >= PORTS_EVERY_S:
            self._ports.clear()
            self._ports_at = now
        key = (proc.pid, proc.start_ticks)
        cached = self._ports.get(key)
        if cached:
            return cached
        ports = listening_ports(self.roots.proc, [proc.pid, *proc.children], tables)
        self._ports[key] = ports
        return ports

    # -- polling --------------------------------------------------------------------------

    def poll(self, gpu_by_pid: dict[int, int] | None = None) -> tuple[ServerInfo, ...]:
        """Discover and poll all servers now (blocking; call it off the UI thread)."""
        targets = self.targets()
        now = time.monotonic()  # cadences and rates: immune to the wall clock jumping
        gpu = gpu_by_pid or {}

        def quick(target: _Target) -> bool:
            state = self._states.get((target.pid, target.port))
            return state is not None and state.took_s is not None and state.took_s < QUICK_S

        # split before anything is submitted: a pooled poll that ends early sets took_s
        inline: list[_Target] = []
        pooled: list[_Target] = []
        for target in targets:
            (inline if quick(target) else pooled).append(target)
        futures = [self._pool.submit(self._timed_poll, t, now, gpu) for t in pooled]
        infos = [self._timed_poll(t, now, gpu) for t in inline]
        infos += [f.result() for f in futures]
        live = {(t.pid, t.port) for t in targets}
        for key in list(self._states):
            if key not in live:
                conn = self._states.pop(key).conn
                if conn is not None:
                    conn.close()
        alive = {(t.process.pid, t.process.start_ticks) for t in targets if t.process}
        for key in list(self._ports):
            if key not in alive:
                del self._ports[key]
        for key in list(self._containers):
            if key not in alive:
                del self._containers[key]
        return tuple(sorted(infos, key=lambda s: (s.port or 0, s.pid or 0)))

    def sample_cpu(self) -> bool:
        """Read every server's CPU time now, so that the next poll's CPU % covers the time
        in between (a one-shot `status` has no earlier poll); True when a server was seen."""
        now = time.monotonic()
        targets = [t for t in self.targets() if t.process is not None and t.process.cpu_s]
        for target in targets:
            assert target.process is not None and target.process.cpu_s is not None
            state = self._states.setdefault((target.pid, target.port), _PollState())
            state.cpu = (target.process.cpu_s, now, _pids(target))
        return bool(targets)

    def _timed_poll(self, target: _Target, now: float, gpu_by_pid: dict[int, int]) -> ServerInfo:
        started = time.monotonic()
        try:
            return self._poll_one(target, now, gpu_by_pid)
        finally:
            state = self._states.get((target.pid, target.port))
            if state is not None:
                state.took_s = time.monotonic() - started

    def _poll_one(self, target: _Target, now: float, gpu_by_pid: dict[int, int]) -> ServerInfo:
        state = self._states.setdefault((target.pid, target.port), _PollState())
        record = target.managed
        box = target.container
        facts: dict[str, Any] = dict(
            name=target.served_name,
            engine=target.engine,
            pid=target.pid,
            pgid=target.pgid,
            port=target.port,
            host=target.host,
            managed=record is not None,
            catalog_name=target.catalog_name,
            log_path=record.log_path if record else (box.log_path if box else None),
            children=target.process.children if target.process else (),
            reachable_via=target.reachable_via,
            container=box.info if box else None,
            argv=shown_argv(
                target.process.argv if target.process else tuple(record.argv if record else ())
            ),
        )
        # the facts are gathered first and the row made once: dataclasses.replace builds the
        # whole ServerInfo again each time (a quarter of an idle poll with 4 servers)
        if target.pid is None:  # a managed server whose process is gone
            cause = UNKNOWN
            if record is not None:
                cause = self.causes.of(record.pid, record.start_ticks, record.exit_code)
            log_tail = tuple(tail(record.log_path, 12)) if record else ()
            facts.update(health=CRASHED, health_detail=cause, exit_cause=cause, log_tail=log_tail)
            return ServerInfo(**facts)
        engine = adapter(target.engine)
        facts.update(self._process_facts(target, state, now, gpu_by_pid))
        facts["rpc_workers"] = self._rpc_workers(target, engine)
        if target.port is None:
            return ServerInfo(**facts, health=STARTING, health_detail="no port known")
        if target.unreachable:
            detail = target.reachable_via or ""
            return ServerInfo(**facts, health=NOT_RESPONDING, health_detail=detail)
        if state.conn is None:
            state.conn = http.Connection(http.host_for_url(target.host).strip("[]"), target.port)
        metrics = None
        if engine.metrics_imply_ready and state.last_health == READY and state.metrics_supported:
            # one request a poll instead of two: a 200 there says what /health would
            metrics = state.conn.get(engine.metrics_path, timeout=self.timeout)
        if metrics is not None and metrics.ok:
            reply = metrics
        else:
            reply = state.conn.get(engine.health_path, timeout=self.timeout)
        health, detail = _health(reply)
        facts.update(health=health, health_detail=detail, latency_s=reply.latency_s)
        if health in (STARTING, LOADING) and record is not None:
            facts["log_tail"] = tuple(tail(record.log_path, 6))
        if health == READY:
            facts.update(self._ready_facts(engine, state, now, metrics))
        if target.proxy_port:
            if now - state.proxy_at >= PROXY_EVERY_S or state.proxy is None:
                state.proxy = self.check_proxy(target)
                state.proxy_at = now
            facts["proxy"] = state.proxy
        state.last_health = health
        return ServerInfo(**facts)

    def _process_facts(
        self, target: _Target, state: _PollState, now: float, gpu_by_pid: dict[int, int]
    ) -> dict:
        pids = _pids(target)
        if target.process is not None:
            rss = target.process.total_rss_bytes
            ticks = target.process.start_ticks
            cpu_s = target.process.cpu_s
        else:
            rss = read_rss(self.roots.proc, target.pid) if target.pid else None
            stat = read_stat(self.roots.proc, target.pid) if target.pid else None
            ticks = stat.start_ticks if stat else None
            cpu_s = stat.cpu_s if stat else None
        gpu = [gpu_by_pid[p] for p in pids if p in gpu_by_pid]
        return {
            "rss_bytes": rss,
            "gpu_bytes": sum(gpu) if gpu else None,
            "uptime_s": process_age(self.roots.proc, ticks) if ticks is not None else None,
            "cpu_percent": _cpu_percent(state, cpu_s, now, pids),
        }

    def _rpc_workers(self, target: _Target, engine: EngineAdapter) -> tuple:
        """Split serving: the head's RPC workers (from its record or its command line)."""
        record = target.managed
        recorded = record.rpc_workers if record else []
        argv = target.process.argv if target.process else (record.argv if record else ())
        if not recorded and not engine.split_endpoints(argv):
            return ()
        entry = self.catalog.get(target.catalog_name or "")
        return worker_statuses(recorded, argv, entry, self.roots.proc)

    def _ready_facts(
        self,
        engine: EngineAdapter,
        state: _PollState,
        now: float,
        metrics: http.Reply | None = None,
    ) -> dict:
        """Models, context, load and KV use of a ready server (`metrics`: this poll's
        answer from /metrics, if it was asked already)."""
        facts: dict = {}
        conn = state.conn
        assert conn is not None
        if now - state.models_at >= MODELS_EVERY_S or state.last_health != READY:
            reply = conn.get("/v1/models", timeout=self.timeout)
            data = reply.json() if reply.ok else None
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                state.models = tuple(
                    printable(str(m.get("id")))
                    for m in data["data"]
                    if isinstance(m, dict) and m.get("id")
                )
                for m in data["data"]:
                    if isinstance(m, dict) and isinstance(m.get("max_model_len"), int):
                        state.context = m["max_model_len"]
            state.models_at = now
            if state.context is None:
                state.context = engine.context_from_server(conn, self.timeout)
        facts["models"] = state.models
        facts["context"] = state.context
        if state.metrics_supported:
            # asked once a poll: an answer this poll already had (even a failed one) is used
            if metrics is None:
                metrics = conn.get(engine.metrics_path, timeout=self.timeout)
            reply = metrics
            if reply.status in (401, 403, 404, 501):
                # llama-server without --metrics, or behind an --api-key sparktop lacks
                state.metrics_supported = False
            elif reply.ok:
                facts.update(self._metric_facts(engine, state, reply.text(), now))
        facts.update(
            engine.extra_facts(
                conn,
                self.timeout,
                facts=facts,
                memo=state.memo,
                now=now,
                metrics_supported=state.metrics_supported,
            )
        )
        return facts

    def _metric_facts(
        self, engine: EngineAdapter, state: _PollState, text: str, now: float
    ) -> dict:
        names = engine.metrics
        values = totals(parse(text))
        kv = first(values, *names.kv_usage)
        running, waiting = first(values, *names.running), first(values, *names.waiting)
        prompt, gen = first(values, *names.prompt_tokens), first(values, *names.generated_tokens)
        return {
            "prompt_tokens_total": prompt,
            "gen_tokens_total": gen,
            "running": round(running) if running is not None else None,
            "waiting": round(waiting) if waiting is not None else None,
            "prompt_tps": state.rates.rate("prompt", prompt, now),
            "gen_tps": state.rates.rate("gen", gen, now),
            "kv_usage": kv * names.kv_usage_scale if kv is not None else None,
        }

    # -- proxies --------------------------------------------------------------------------

    def check_proxy(self, target: _Target) -> ProxyStatus:
        """Is the proxy up, does it refuse a request without a token, is it open to the LAN?"""
        import os

        assert target.proxy_port is not None
        listen = self._listen_address(target.proxy_port)
        host = listen if listen and not listen.startswith(("0.0.0.0", "::")) else "127.0.0.1"
        url = http.base_url(host, target.proxy_port) + "/v1/models"
        plain = http.get(url, timeout=self.timeout)
        if plain.status is None:
            return ProxyStatus(
                port=target.proxy_port,
                host=listen or target.proxy_host,
                reachable=False,
                refuses_without_token=None,
                detail=plain.error or "",
            )
        refuses = plain.status in (401, 403)
        token_ok = None
        token = os.environ.get(target.proxy_token_env) if target.proxy_token_env else None
        if token:
            with_token = http.get(
                url, timeout=self.timeout, headers={"Authorization": f"Bearer {token}"}
            )
            token_ok = with_token.ok
        bound = listen or target.proxy_host
        open_net = not refuses and plain.ok and not is_loopback(bound)
        return ProxyStatus(
            port=target.proxy_port,
            host=bound,
            reachable=True,
            refuses_without_token=refuses,
            token_accepted=token_ok,
            open_on_network=open_net,
            detail=f"HTTP {plain.status} without token",
        )

    def _listen_address(self, port: int) -> str | None:
        """The address a local port is bound to, from our network namespace's socket table."""
        import os

        # read twice at most: the kernel builds /proc/PID/net/tcp a chunk per read() and can
        # skip a socket when others come and go between chunks; a second read costs µs
        for _attempt in range(2):
            table = listening_sockets(self.roots.proc, os.getpid()) or {}
            for address, listen_port in table.values():
                if listen_port == port:
                    return address
        return None


def _pids(target: _Target) -> tuple[int, ...]:
    """The processes a row's figures sum: its PID, the server's own when that differs (a
    container's server; the row's PID is its `docker run` client) and the server's workers."""
    pids = (target.pid,) if target.pid else ()
    if target.process is None:
        return pids
    own = (target.process.pid,) if target.process.pid != target.pid else ()
    return (*pids, *own, *target.process.children)


def _same_process(record: ManagedServer | None, proc: ServerProcess) -> ManagedServer | None:
    """The record, when it is of this very process (its PID may have been reused since)."""
    return record if record is not None and record.start_ticks == proc.start_ticks else None


SECRET_WORDS = ("key", "token", "password", "secret")
"""Options whose value is hidden in a shown command line (`--api-key K`, `--hf-token=T`);
those naming a file (`--api-key-file`) stay."""


@lru_cache(maxsize=64)
def shown_argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    """`argv` with the values of secret options as *** (the agent serves it to the LAN)."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
            continue
        name, eq, _value = arg.partition("=")
        secret = (
            name.startswith("-")
            and any(word in name.lower() for word in SECRET_WORDS)
            and not name.endswith(("-file", "_file", "-path"))
        )
        out.append(f"{name}=***" if secret and eq else arg)
        hide = secret and not eq
    return tuple(out)


def _cpu_percent(
    state: _PollState, cpu_s: float | None, now: float, pids: tuple[int, ...]
) -> float | None:
    """CPU use since the last poll, in percent of one core (as top shows it: 250 = two and a
    half cores busy); None on the first poll, or when the server's processes changed."""
    before = state.cpu
    state.cpu = (cpu_s, now, pids) if cpu_s is not None else None
    if before is None or cpu_s is None or before[2] != pids or now <= before[1]:
        return None
    used = cpu_s - before[0]
    return 100.0 * used / (now - before[1]) if used >= 0 else None


def _health(reply: http.Reply) -> tuple[str, str]:
    if reply.status is None:
        if reply.error == "connection refused":
            return STARTING, "port not open yet"
        if reply.error == "timed out":
            return NOT_RESPONDING, "no answer within the timeout"
        return NOT_RESPONDING, reply.error or "no answer"
    if reply.status == 200:
        return READY, ""
    if reply.status == 503:
        data = reply.json()
        message = "loading model"
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            message = printable(str(data["error"].get("message") or message)).lower()
        return LOADING, message
    return ERROR, f"/health answered HTTP {reply.status}"
