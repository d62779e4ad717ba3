"""The state of other hosts (their `status --json`), fetched concurrently with per-host
timeouts, and serve / stop / test run on them over SSH.

One dead host never delays the others: each fetch runs on its own thread and is bounded by
its host's timeout; a host that fails is *unreachable* with a one-line reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sparktop.fleet.hosts import Host, bearer_headers
from sparktop.fleet.ssh import SshResult, failure_reason, run_ssh
from sparktop.servers import http

ACTION_TIMEOUTS = {"serve": 1800.0, "stop": 180.0, "test": 300.0}
"""Default upper bounds (seconds) for remote actions; serve waits for the model to load."""


@dataclass(frozen=True)
class HostState:
    """One host as last seen. `status` is its `status --json` document when reachable."""

    name: str
    reachable: bool
    reason: str | None = None
    status: dict[str, Any] | None = None
    fetched_at: float = 0.0
    latency_s: float | None = None
    transport: str = "ssh"
    address: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transport": self.transport,
            "address": self.address,
            "reachable": self.reachable,
            "reason": self.reason,
            "fetched_at": self.fetched_at,
            "latency_s": self.latency_s,
            "summary": summarize(self.status) if self.status else None,
            "status": self.status,
        }


def _check_doc(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or "memory" not in doc or "schema" not in doc:
        raise ValueError("answer is not a sparktop status document")
    return doc


def _fetch_agent(host: Host, timeout: float) -> dict[str, Any]:
    assert host.agent is not None
    headers = bearer_headers(host.token_env, "the agent token")
    reply = http.get(
        host.agent + "/status", timeout=timeout, headers=headers, max_body=64 * 1024 * 1024,
        trust_env=True, follow_redirects=True,
    )  # fmt: skip
    if reply.status is None:
        if reply.error == "timed out":
            raise ValueError(f"timed out after {timeout:g} s")
        raise ValueError(f"cannot reach {host.agent}: {reply.cause or reply.error}")
    if reply.status == 401:
        why = "token refused" if host.token_env else "agent wants a token (set token_env)"
        raise ValueError(f"HTTP 401 from the agent: {why}")
    if not reply.ok:
        raise ValueError(f"HTTP {reply.status} from the agent")
    body = reply.body
    try:
        return _check_doc(json.loads(body))
    except ValueError as exc:
        raise ValueError(f"bad answer from the agent: {exc}") from None


def _fetch_ssh(host: Host, timeout: float) -> dict[str, Any]:
    result = run_ssh(host, [*host.command, "status", "--json"], timeout)
    if result.reason:
        raise ValueError(result.reason)
    if result.returncode != 0:
        raise ValueError(failure_reason(result.returncode, result.stderr))
    try:
        return _check_doc(json.loads(result.stdout))
    except ValueError as exc:
        raise ValueError(f"bad answer from `sparktop status --json` there: {exc}") from None


def fetch(host: Host, timeout: float | None = None) -> HostState:
    """Read one host's status (blocking, at most about `timeout` seconds)."""
    timeout = timeout or host.timeout
    started = time.monotonic()
    try:
        fetcher = _fetch_agent if host.transport == "agent" else _fetch_ssh
        doc = fetcher(host, timeout)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return HostState(
            host.name,
            False,
            reason,
            None,
            time.time(),
            time.monotonic() - started,
            host.transport,
            host.address,
        )
    return HostState(
        host.name,
        True,
        None,
        doc,
        time.time(),
        time.monotonic() - started,
        host.transport,
        host.address,
    )


def fetch_prometheus(host: Host, timeout: float | None = None) -> list[HostState]:
    """Every instance a `prometheus:` entry lists, one state each (one query per panel);
    one unreachable state named after the entry when Prometheus cannot be asked."""
    from sparktop.fleet.prometheus import PrometheusError, fetch_instances

    timeout = timeout or host.timeout
    started = time.monotonic()
    try:
        instances = fetch_instances(host, timeout)
    except PrometheusError as exc:
        instances, reason = [], str(exc)
    except Exception as exc:  # an answer this reader did not expect: the row says so
        instances, reason = [], f"bad answer from Prometheus: {exc!r}"
    else:
        reason = "no instance exports sparktop's metrics there"
    latency = time.monotonic() - started
    if not instances:
        return [HostState(host.name, False, reason, None, time.time(), latency,
                          host.transport, host.address)]  # fmt: skip
    return [
        HostState(instance, doc is not None, why or None, doc, time.time(), latency,
                  host.transport, host.address)
        for instance, doc, why in instances
    ]  # fmt: skip


def fetch_many(host: Host, timeout: float | None = None) -> list[HostState]:
    """The states one configured host stands for: itself, or a Prometheus's instances."""
    if host.transport == "prometheus":
        return fetch_prometheus(host, timeout)
    return [fetch(host, timeout)]


def fetch_all(hosts: Iterable[Host], timeout: float | None = None) -> list[HostState]:
    """Every host at once; the slowest takes its own timeout, not the sum of them. A
    `prometheus:` entry gives one state per instance it lists."""
    hosts = list(hosts)
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return [s for states in pool.map(lambda h: fetch_many(h, timeout), hosts) for s in states]


class FleetPoller:
    """Polls every host on its own thread every `interval` s; `on_states` gets each host's
    states (one, or a Prometheus's instances: the whole list, so rows that left can go).

    A slow or dead host only delays its own row.
    """

    def __init__(
        self,
        hosts: Iterable[Host],
        on_states: Callable[[Host, list[HostState]], None],
        interval: float = 5.0,
    ) -> None:
        self.hosts = list(hosts)
        self.on_states = on_states
        self.interval = interval
        self.stopped = threading.Event()
        self.wake = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for host in self.hosts:
            thread = threading.Thread(
                target=self._loop, args=(host,), name=f"fleet-{host.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _loop(self, host: Host) -> None:
        while not self.stopped.is_set():
            try:
                states = fetch_many(host)
            except Exception as exc:  # a bug must not freeze the row: it says what happened
                states = [HostState(host.name, False, repr(exc), None, time.time(),
                                    transport=host.transport, address=host.address)]  # fmt: skip
            if self.stopped.is_set():
                return
            self.on_states(host, states)
            self.wake.wait(self.interval)

    def refresh(self) -> None:
        """Poll again now (every host)."""
        self.wake.set()
        self.wake = threading.Event()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()


# -- summaries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The figures of one fleet row, from a status document."""

    hostname: str
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    gpus: tuple[str, ...]
    """One short label per GPU: name and utilisation."""
    servers: tuple[str, ...]
    """One label per server: served name and health."""
    downloads_active: int
    downloads_total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_available_bytes": self.memory_available_bytes,
            "gpus": list(self.gpus),
            "servers": list(self.servers),
            "downloads_active": self.downloads_active,
            "downloads_total": self.downloads_total,
        }


ACTIVE_DOWNLOADS = ("queued", "downloading", "verifying", "downloading (external)")


def summary_of(doc: dict[str, Any]) -> Summary:
    """Row figures from a `status --json` document (tolerates missing keys)."""
    memory = doc.get("memory") or {}
    gpus = []
    for gpu in doc.get("gpus") or []:
        util = gpu.get("utilization_percent")
        label = str(gpu.get("name") or gpu.get("vendor") or "GPU")
        gpus.append(f"{label} {util:.0f}%" if isinstance(util, int | float) else label)
    servers = tuple(
        f"{s.get('name') or '?'} ({s.get('health') or '?'})" for s in doc.get("servers") or []
    )
    downloads = doc.get("downloads") or []
    active = sum(1 for d in downloads if d.get("state") in ACTIVE_DOWNLOADS)
    return Summary(
        hostname=str(doc.get("hostname") or "?"),
        memory_used_bytes=memory.get("used_bytes"),
        memory_total_bytes=memory.get("total_bytes"),
        memory_available_bytes=memory.get("available_bytes"),
        gpus=tuple(gpus),
        servers=servers,
        downloads_active=active,
        downloads_total=len(downloads),
    )


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    return summary_of(doc).to_json()


# -- actions over SSH ----------------------------------------------------------------------


class RemoteError(Exception):
    """An action could not be run on the host (no SSH destination, ssh failed, timeout)."""


@dataclass(frozen=True)
class ActionResult:
    host: str
    verb: str
    argv: tuple[str, ...]
    returncode: int | None
    output: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None and self.returncode == 0


def action_argv(host: Host, verb: str, target: str, flags: Iterable[str] = ()) -> list[str]:
    """The remote argv of `sparktop VERB TARGET FLAGS…` on `host`."""
    if verb not in ACTION_TIMEOUTS:
        raise ValueError(f"unknown remote action {verb!r}")
    return [*host.command, verb, target, *flags]


def run_action(
    host: Host,
    verb: str,
    target: str,
    flags: Iterable[str] = (),
    *,
    timeout: float | None = None,
    capture: bool = True,
) -> ActionResult:
    """Run `sparktop serve|stop|test TARGET` on `host` over SSH, bounded by `timeout`."""
    if not host.can_act:
        raise RemoteError(f"host {host.name} has no ssh destination; serve/stop/test need SSH")
    argv = action_argv(host, verb, target, flags)
    result: SshResult = run_ssh(host, argv, timeout or ACTION_TIMEOUTS[verb], capture=capture)
    output = (result.stdout or "") + (result.stderr or "")
    return ActionResult(host.name, verb, tuple(argv), result.returncode, output, result.reason)
