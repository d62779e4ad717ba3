"""Server rows as text, shared by the TUI table and `sparktop status`."""

from __future__ import annotations

from sparktop.servers.info import CRASHED, READY, ProxyStatus, ServerInfo
from sparktop.units import fmt_bytes, fmt_duration, fmt_uptime

COLUMNS = (
    "NAME", "ENGINE", "PID", "PORT", "PROXY", "HEALTH", "UP", "CPU%", "MEMORY", "RUN/WAIT",
    "PP t/s", "TG t/s", "KV",
)  # fmt: skip


CONTAINER = "CONTAINER"
"""Shown after ENGINE only while some server runs in a container."""


def columns_for(servers: tuple[ServerInfo, ...] | list[ServerInfo]) -> tuple[str, ...]:
    """The server table's columns: CONTAINER only when some server is containerised."""
    if any(s.container is not None for s in servers):
        return (*COLUMNS[:2], CONTAINER, *COLUMNS[2:])
    return COLUMNS


def container_cell(server: ServerInfo) -> str:
    """`docker vllm-a`, `k8s default/vllm-0:vllm`; – for a host process."""
    box = server.container
    if box is None:
        return "–"
    if box.pod:
        return f"k8s {box.pod}" + (f":{box.name}" if box.name else "")
    return f"{box.runtime} {box.name or box.id[:12]}"


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def fmt_proxy(proxy: ProxyStatus | None) -> str:
    if proxy is None:
        return "–"
    if not proxy.reachable:
        return f"{proxy.port} down"
    if proxy.open_on_network:
        return f"{proxy.port} OPEN!"
    if proxy.refuses_without_token:
        return f"{proxy.port} auth"
    return f"{proxy.port} no-auth"


def fmt_cpu(percent: float | None) -> str:
    """`37%`, `412%` (four cores busy); – before two polls."""
    return "–" if percent is None else f"{percent:.0f}%"


def fmt_memory(server: ServerInfo) -> str:
    rss = fmt_bytes(server.rss_bytes) if server.rss_bytes is not None else "–"
    if server.gpu_bytes:
        return f"{rss} +{fmt_bytes(server.gpu_bytes)} GPU"
    return rss


def health_cell(server: ServerInfo) -> str:
    """The HEALTH column: the state, and for a crashed server how it ended."""
    if server.health == CRASHED and server.exit_cause:
        return f"{server.health}: {server.exit_cause}"
    if server.idle_stop_in_s is not None:
        return f"{server.health}, idle stop in {fmt_duration(server.idle_stop_in_s)}"
    return server.health


def health_text(server: ServerInfo) -> str:
    if server.health == CRASHED and server.exit_cause:
        return health_cell(server)
    if server.health_detail and server.health != READY:
        return f"{server.health} ({server.health_detail})"
    return server.health


def port_cell(server: ServerInfo) -> str:
    """The port sparktop reaches it on; a container's own port first when it differs
    (`8000→30000`: 8000 inside, published on 30000)."""
    if not server.port:
        return "–"
    inside = (server.reachable_via or "").split(" ", 1)[0]
    if inside.startswith(":") and inside[1:] != str(server.port):
        return f"{inside[1:]}→{server.port}"
    return str(server.port)


def server_row(server: ServerInfo, container: bool = False) -> tuple[str, ...]:
    """The row's cells; with `container`, the CONTAINER cell after ENGINE (columns_for)."""
    running = "–" if server.running is None else f"{server.running:.0f}"
    waiting = "–" if server.waiting is None else f"{server.waiting:.0f}"
    name = server.name + ("" if server.managed else " *")
    box = (container_cell(server),) if container else ()
    return (
        name,
        server.engine,
        *box,
        str(server.pid) if server.pid else "–",
        port_cell(server),
        fmt_proxy(server.proxy),
        health_cell(server),
        fmt_uptime(server.uptime_s) if server.uptime_s is not None else "–",
        fmt_cpu(server.cpu_percent),
        fmt_memory(server),
        f"{running}/{waiting}",
        fmt_rate(server.prompt_tps),
        fmt_rate(server.gen_tps),
        "–" if server.kv_usage is None else f"{server.kv_usage:.0%}",
    )
