"""The view for windows too small for the panels: one short line per fact, never wrapped.

Below MIN_COLUMNS × MIN_ROWS (a phone SSH client, a split tmux pane) the boxed panels would
cut off mid-sentence; this summary keeps memory, GPUs, servers and downloads readable.
"""

from __future__ import annotations

from textual.content import Content

from sparktop.downloads.states import ACTIVE
from sparktop.memview import bar_cells, memory_shares
from sparktop.servers.info import ServerInfo
from sparktop.servers.rows import fmt_rate
from sparktop.snapshot import DownloadInfo, ExternalDownloadInfo
from sparktop.ui.widgets.memory_panel import CHAR, STYLE
from sparktop.ui.widgets.panel import SnapshotPanel
from sparktop.ui.widgets.servers_panel import HEALTH_STYLE
from sparktop.units import fmt_bytes, fmt_percent

MIN_COLUMNS = 64
MIN_ROWS = 20


def _fit(content: Content, width: int) -> Content:
    """Cut a line to `width` cells with an ellipsis instead of wrapping it."""
    if content.cell_length <= width:
        return content
    return content.truncate(max(1, width - 1)) + Content("…")


class SummaryPanel(SnapshotPanel):
    """Memory, GPUs, servers and downloads in as few cells as still read well."""

    DEFAULT_CSS = "SummaryPanel { padding: 0 1; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.servers: tuple[ServerInfo, ...] = ()
        self.downloads: list[DownloadInfo | ExternalDownloadInfo] = []

    def build(self, width: int, height: int) -> list[Content]:
        snap = self.snapshot
        if snap is None:
            return [Content("reading /proc/meminfo …")]
        lines: list[Content] = []
        mem = snap.memory
        if mem is None:
            lines.append(Content.assemble((snap.memory_error or "memory unknown", "$error")))
        else:
            lines.append(
                Content.assemble(
                    ("Mem ", "bold"),
                    (f"{mem.used_percent:.0f}% ", "bold"),
                    f"{fmt_bytes(mem.used_bytes)}/{fmt_bytes(mem.total_bytes)}",
                    (" avail ", "$text-muted"),
                    fmt_bytes(mem.available_bytes),
                    (" unified" if snap.unified else "", "$accent"),
                )
            )
            shares = [s for s in memory_shares(snap) if snap.unified or s.key != "gpu"]
            lines.append(
                Content.assemble(
                    *[(CHAR[key] * cells, STYLE[key]) for key, cells in bar_cells(shares, width)]
                )
            )
            for hint in snap.hints[:1]:
                lines.append(Content.assemble((f"⚠ {hint.message}", "$warning")))
        if not snap.gpus:
            reason = (snap.gpu_unavailable_reason or "none").split(";")[0]
            lines.append(Content.assemble(("GPU ", "bold"), (f"none: {reason}", "$text-muted")))
        for gpu in snap.gpus:
            temp = f" {gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else ""
            power = f" {gpu.power_w:.0f}W" if gpu.power_w is not None else ""
            memory = ""
            if gpu.memory_total_bytes:
                memory = f" {fmt_bytes(gpu.memory_used_bytes)}/{fmt_bytes(gpu.memory_total_bytes)}"
            lines.append(
                Content.assemble(
                    (f"GPU{gpu.index} ", "bold"),
                    f"{fmt_percent(gpu.utilization_percent)}{temp}{power}{memory} ",
                    (gpu.name, "$text-muted"),
                )
            )
            if gpu.error:
                lines.append(Content.assemble((f"  {gpu.error}", "$error")))
        for server in self.servers:
            rate = f" tg {fmt_rate(server.gen_tps)}" if server.gen_tps is not None else ""
            lines.append(
                Content.assemble(
                    (f":{server.port or '?'} ", "bold"),
                    (server.health, HEALTH_STYLE.get(server.health, "")),
                    f" {server.name}{'' if server.managed else ' *'}{rate}",
                )
            )
        running = [d for d in self.downloads if d.state in ACTIVE]
        if running:
            done = sum(d.done_bytes for d in running)
            total = sum(d.total_bytes or 0 for d in running) or 1
            lines.append(
                Content.assemble(
                    ("DL ", "bold"), f"{len(running)} running {100 * done / total:.0f}%"
                )
            )
        if height and len(lines) < height:
            lines.append(
                Content.assemble(
                    (f"small window: {MIN_COLUMNS}×{MIN_ROWS} shows the panels", "$text-muted")
                )
            )
        return [_fit(line, width) for line in lines[: max(1, height)] if height] or lines[:1]
