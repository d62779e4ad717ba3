"""`enter` on a server row: its tok/s, KV and CPU over the last minutes, and all else known.

The histories are kept by the main view (a few numbers per server per poll, bounded), keyed
by the server (pid:port), so the chart is there already when the detail opens.
"""

from __future__ import annotations

import shlex
import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from sparktop.history import sparkline
from sparktop.servers.info import CRASHED, ServerInfo
from sparktop.servers.rows import fmt_cpu, fmt_memory, fmt_proxy, fmt_rate, health_text
from sparktop.units import fmt_duration, fmt_uptime

SAMPLES = 360
"""Polls kept per server: 12 minutes at the 2 s poll, 30 when idle (5 s)."""
CHART_WIDTH = 60


@dataclass
class Track:
    """One server's recent figures, oldest first (None: not known at that poll)."""

    times: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    gen_tps: deque[float | None] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    kv: deque[float | None] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    cpu: deque[float | None] = field(default_factory=lambda: deque(maxlen=SAMPLES))


class ServerHistories:
    """The recent figures of every server on the box, one bounded Track per server."""

    def __init__(self) -> None:
        self.tracks: dict[str, Track] = {}

    def record(self, servers: tuple[ServerInfo, ...], now: float | None = None) -> None:
        """One sample per server from a poll; servers gone are forgotten."""
        now = time.monotonic() if now is None else now
        keys = {s.key for s in servers}
        for gone in self.tracks.keys() - keys:
            del self.tracks[gone]
        for server in servers:
            track = self.tracks.setdefault(server.key, Track())
            track.times.append(now)
            track.gen_tps.append(server.gen_tps)
            track.kv.append(server.kv_usage)
            track.cpu.append(server.cpu_percent)


def _spark_line(label: str, values: list[float | None], now: str, peak: str, high: float) -> str:
    known = [v for v in values if v is not None]
    line = sparkline([v or 0.0 for v in values], CHART_WIDTH, high=high or 1.0)
    return f"{label:<7} {line}  now {now} · peak {peak if known else '–'}"


def detail_lines(server: ServerInfo, track: Track | None, gone: bool = False) -> list[str]:
    """What the detail screen shows, as plain lines."""
    state = "gone" if gone else health_text(server)
    lines = [f"{server.name}  ({server.engine})  {state}"]
    if track is not None and track.times:
        span = track.times[-1] - track.times[0]
        lines += ["", f"last {fmt_duration(span)}, one column per poll (newest right)"]
        gen = list(track.gen_tps)
        kv = list(track.kv)
        cpu = list(track.cpu)
        gen_peak = max((v for v in gen if v is not None), default=0.0)
        kv_peak = max((v for v in kv if v is not None), default=0.0)
        cpu_peak = max((v for v in cpu if v is not None), default=0.0)
        lines += [
            _spark_line("TG t/s", gen, fmt_rate(server.gen_tps), fmt_rate(gen_peak), gen_peak),
            _spark_line("KV", kv, _share(server.kv_usage), _share(kv_peak), 1.0),
            _spark_line(
                "CPU", cpu, fmt_cpu(server.cpu_percent), fmt_cpu(cpu_peak), max(100.0, cpu_peak)
            ),
        ]
    lines.append("")
    workers = f" (workers {', '.join(map(str, server.children))})" if server.children else ""
    facts = [
        ("pid", f"{server.pid or '–'}{workers}"),
        ("url", server.url or "–"),
        ("up", fmt_uptime(server.uptime_s) if server.uptime_s is not None else "–"),
        ("memory", fmt_memory(server)),
        ("requests", _requests(server)),
        ("models", ", ".join(server.models) or "–"),
        ("context", str(server.context) if server.context else "–"),
        ("catalog", server.catalog_name or "–"),
        ("started", "by sparktop" if server.managed else "outside sparktop"),
        ("proxy", _proxy(server)),
        ("log", server.log_path or "–"),
    ]
    if server.container is not None:
        box = server.container
        facts.append(("container", f"{box.runtime} {box.pod or box.name or box.id[:12]}"))
    if server.reachable_via:
        facts.append(("reached", server.reachable_via))
    if server.exit_cause:
        facts.append(("ended", server.exit_cause))
    facts.append(("command", shlex.join(server.argv) if server.argv else "–"))
    lines += [f"{name:<9} {value}" for name, value in facts]
    if server.log_tail and server.health == CRASHED:
        lines += ["", "log tail:", *(f"  {line}" for line in server.log_tail)]
    return lines


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _requests(server: ServerInfo) -> str:
    def count(value: float | None) -> str:
        return "–" if value is None else f"{value:,.0f}"

    return (
        f"running {count(server.running)} · waiting {count(server.waiting)} · "
        f"prompt tokens {count(server.prompt_tokens_total)} · "
        f"generated {count(server.gen_tokens_total)}"
    )


def _proxy(server: ServerInfo) -> str:
    proxy = server.proxy
    if proxy is None:
        return "–"
    text = f"{proxy.host}:{proxy.port} {fmt_proxy(proxy).split(' ', 1)[-1]}"
    return text + (f" ({proxy.detail})" if proxy.detail else "")


class ServerDetailScreen(Screen[None]):
    """One server in full; redrawn at every poll while it is open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "app.pop_screen", "Back", key_display="esc"),
    ]
    DEFAULT_CSS = """
    ServerDetailScreen #server-detail { padding: 0 1; }
    """

    def __init__(self, server: ServerInfo, histories: ServerHistories) -> None:
        super().__init__()
        self.server = server
        self.histories = histories
        self.gone = False

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = f"server {self.server.name}"
            yield Static(self.text(), id="server-detail", markup=False)
        yield Footer()

    def text(self) -> str:
        track = self.histories.tracks.get(self.server.key)
        return "\n".join(detail_lines(self.server, track, self.gone))

    def show(self, servers: tuple[ServerInfo, ...]) -> None:
        """A poll's servers: this one's new figures (a crashed one is found by its port)."""
        now = next((s for s in servers if s.key == self.server.key), None)
        if now is None:
            now = next(
                (s for s in servers if s.port == self.server.port and s.name == self.server.name
                 and s.health == CRASHED),
                None,
            )  # fmt: skip
        self.gone = now is None
        if now is not None:
            self.server = now
        self.query_one("#server-detail", Static).update(self.text())
