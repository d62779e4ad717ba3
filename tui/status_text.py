"""`sparktop status` as plain text (Rich; no colour when piped or with NO_COLOR)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from sparktop import __version__
from sparktop.memview import bar_cells, memory_shares
from sparktop.snapshot import GpuInfo, Snapshot
from sparktop.units import fmt_bytes, fmt_duration, fmt_percent

SHARE_STYLE = {"gpu": "magenta", "other": "yellow", "cache": "blue", "free": "green"}
SHARE_CHAR = {"gpu": "█", "other": "█", "cache": "▒", "free": "░"}


def _memory(snapshot: Snapshot, width: int) -> list[Text | Table]:
    memory = snapshot.memory
    if memory is None:
        return [Text(f"Memory: {snapshot.memory_error}", style="red")]
    label = "Memory (unified with GPU)" if snapshot.unified else "Memory"
    head = Text(f"{label}: ", style="bold")
    head.append(
        f"total {fmt_bytes(memory.total_bytes)}  used {fmt_bytes(memory.used_bytes)}  "
        f"available {fmt_bytes(memory.available_bytes)}  cache {fmt_bytes(memory.cached_bytes)}  "
        f"swap {fmt_bytes(memory.swap_used_bytes)}/{fmt_bytes(memory.swap_total_bytes)}",
        style="",
    )
    shares = memory_shares(snapshot)
    bar = Text("[")
    for key, cells in bar_cells(shares, max(10, width - 2)):
        bar.append(SHARE_CHAR[key] * cells, style=SHARE_STYLE[key])
    bar.append("]")
    legend = Text()
    for share in shares:
        legend.append(f"{SHARE_CHAR[share.key]} ", style=SHARE_STYLE[share.key])
        legend.append(f"{share.label} {fmt_bytes(share.bytes)}   ")
    out: list[Text | Table] = [head, bar, legend]
    for hint in snapshot.hints:
        line = Text("hint: ", style="bold yellow")
        line.append(hint.message)
        if hint.command:
            line.append(": ")
            line.append(hint.command, style="bold")
        out.append(line)
    return out


def _gpu_line(gpu: GpuInfo) -> Text:
    text = Text(f"GPU {gpu.index}  ", style="bold")
    text.append(gpu.name, style="bold cyan")
    power = "—"
    if gpu.power_w is not None:
        power = f"{gpu.power_w:.0f} W"
        if gpu.power_limit_w:
            power += f" / {gpu.power_limit_w:.0f} W"
    temp = f"{gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "—"
    text.append(f"  util {fmt_percent(gpu.utilization_percent)}  temp {temp}  power {power}")
    kind = " unified" if gpu.unified else ""
    text.append(
        f"  memory{kind} {fmt_bytes(gpu.memory_used_bytes)} / {fmt_bytes(gpu.memory_total_bytes)}"
    )
    if gpu.error:
        text.append(f"  ({gpu.error})", style="red")
    return text


def _gpus(snapshot: Snapshot) -> list[Text | Table]:
    if not snapshot.gpus:
        return [Text(f"GPU: none visible — {snapshot.gpu_unavailable_reason}", style="yellow")]
    out: list[Text | Table] = []
    for gpu in snapshot.gpus:
        out.append(_gpu_line(gpu))
        if gpu.processes:
            table = Table(box=None, padding=(0, 2), show_edge=False, pad_edge=False)
            table.add_column("  PID", justify="right")
            table.add_column("NAME")
            table.add_column("GPU MEMORY", justify="right")
            for proc in gpu.processes:
                table.add_row(f"  {proc.pid}", proc.name or "?", fmt_bytes(proc.used_bytes))
            out.append(table)
    return out


def render_status(snapshot: Snapshot, width: int = 80) -> Group:
    title = Text(f"sparktop {__version__} — {snapshot.hostname}", style="bold")
    title.append(f" — up {fmt_duration(snapshot.uptime_s)}", style="dim")
    return Group(title, *_memory(snapshot, width), *_gpus(snapshot))


def print_status(snapshot: Snapshot, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=False)
    console.print(render_status(snapshot, width=min(console.width, 100)))
