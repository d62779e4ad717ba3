"""`sparktop status` as plain text (Rich; no colour when piped or with NO_COLOR)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from sparktop import __version__
from sparktop.memview import bar_cells, memory_shares
from sparktop.probes.disk import low_space
from sparktop.servers.info import READY
from sparktop.servers.printable import printable
from sparktop.servers.rows import CONTAINER, columns_for, health_text, server_row
from sparktop.snapshot import GpuInfo, Snapshot
from sparktop.units import fmt_bytes, fmt_duration, fmt_percent

SHARE_STYLE = {"gpu": "magenta", "other": "yellow", "cache": "blue", "free": "green"}
SHARE_CHAR = {"gpu": "█", "other": "█", "cache": "▒", "free": "░"}
SHARE_LABEL = {"gpu": "GPU", "other": "other", "cache": "cache", "free": "free"}
SOURCE_NOTE = {
    "system+processes": "unified pool: sum of GPU processes",
    "gtt": "unified: GTT, i.e. system memory",
}


def _memory(snapshot: Snapshot, width: int) -> list[Text]:
    memory = snapshot.memory
    if memory is None:
        return [Text(f"Memory: {snapshot.memory_error}", style="red")]
    title = Text("Memory", style="bold")
    if snapshot.unified:
        title.append("  unified with the GPU", style="cyan")
    lines = [
        title,
        Text(
            f"  total {fmt_bytes(memory.total_bytes)} · used {fmt_bytes(memory.used_bytes)} · "
            f"available {fmt_bytes(memory.available_bytes)} · "
            f"swap {fmt_bytes(memory.swap_used_bytes)} of {fmt_bytes(memory.swap_total_bytes)}"
        ),
    ]
    shares = [s for s in memory_shares(snapshot) if snapshot.unified or s.key != "gpu"]
    legend = Text("  ")
    for i, share in enumerate(shares):
        legend.append(SHARE_CHAR[share.key], style=SHARE_STYLE[share.key])
        legend.append(f" {SHARE_LABEL[share.key]} {fmt_bytes(share.bytes)}")
        if i < len(shares) - 1:
            legend.append(" · ")
    bar = Text("  ")
    for key, cells in bar_cells(shares, max(10, width - 2)):
        bar.append(SHARE_CHAR[key] * cells, style=SHARE_STYLE[key])
    lines += [legend, bar]
    for hint in snapshot.hints:
        line = Text("  hint: ", style="bold yellow")
        line.append(hint.message)
        if hint.command:
            line.append(": ")
            line.append(hint.command, style="bold")
        lines.append(line)
    return lines


def _gpu(gpu: GpuInfo) -> list[Text | Table]:
    title = Text(f"GPU {gpu.index}  ", style="bold")
    title.append(gpu.name, style="bold cyan")
    if gpu.unified:
        title.append("  unified", style="cyan")
    power = "—"
    if gpu.power_w is not None:
        power = f"{gpu.power_w:.0f} W"
        if gpu.power_limit_w:
            power += f" of {gpu.power_limit_w:.0f} W"
    temp = f"{gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "—"
    figures = Text(f"  util {fmt_percent(gpu.utilization_percent)} · temp {temp} · power {power}")
    memory = Text(
        f"  memory {fmt_bytes(gpu.memory_used_bytes)} of {fmt_bytes(gpu.memory_total_bytes)}"
    )
    if gpu.memory_source in SOURCE_NOTE and gpu.unified:
        memory.append(f" ({SOURCE_NOTE[gpu.memory_source]})", style="dim")
    out: list[Text | Table] = [title, figures, memory]
    if gpu.error:
        out.append(Text(f"  {gpu.error}", style="red"))
    if gpu.processes:
        table = Table(box=None, padding=(0, 2), show_edge=False, pad_edge=False)
        table.add_column("  PID", justify="right")
        table.add_column("PROCESS")
        table.add_column("GPU MEMORY", justify="right")
        for proc in gpu.processes:
            table.add_row(f"  {proc.pid}", proc.name or "?", fmt_bytes(proc.used_bytes))
        out.append(table)
    return out


def render_status(snapshot: Snapshot, width: int = 80) -> Group:
    title = Text(f"sparktop {__version__} — {snapshot.hostname}", style="bold")
    if snapshot.host_root:
        title.append(f" (the node, through {snapshot.host_root})", style="cyan")
    title.append(f" — up {fmt_duration(snapshot.uptime_s)}", style="dim")
    parts: list[Text | Table] = [title, *_memory(snapshot, min(width, 80))]
    if not snapshot.gpus:
        parts.append(Text(f"GPU: none visible — {snapshot.gpu_unavailable_reason}", style="yellow"))
    for gpu in snapshot.gpus:
        parts += _gpu(gpu)
    parts += _disks(snapshot)
    parts += _servers(snapshot, width)
    parts += _downloads(snapshot)
    return Group(*parts)


def _disks(snapshot: Snapshot) -> list[Text | Table]:
    """`Disk  /data 812.0 GiB free of 1.8 TiB (3 model folders)`, one line per filesystem."""
    out: list[Text | Table] = []
    for disk in snapshot.disks:
        folders = len(disk.dirs)
        line = Text("Disk", style="bold")
        line.append(
            f"  {disk.mount} {fmt_bytes(disk.free_bytes)} free of {fmt_bytes(disk.total_bytes)}"
            f" ({folders} model folder{'s' if folders != 1 else ''})"
        )
        out.append(line)
    out += [Text(f"  {warning}", style="bold red") for warning in low_space(snapshot.disks)]
    return out


def _downloads(snapshot: Snapshot) -> list[Text | Table]:
    if not snapshot.downloads:
        return []
    out: list[Text | Table] = [Text("Downloads", style="bold")]
    for record in snapshot.downloads[-8:]:
        total = record.total_bytes or 0
        line = (
            f"  {record.repo}  {record.state}  {fmt_bytes(record.done_bytes)} / "
            f"{fmt_bytes(total)} ({record.percent or 0:.1f}%)"
        )
        if not record.external and record.error:
            line += f"  {record.error}"
        out.append(Text(printable(line)))
    return out


DROP_FIRST = (
    "KV", "PP t/s", "TG t/s", "PROXY", "CPU%", "RUN/WAIT", "UP", "ENGINE", CONTAINER, "MEMORY",
)  # fmt: skip
"""Server columns left out, in this order, until the table fits the width. NAME, PID, PORT
and HEALTH always stay, whole: a name longer than the whole width folds onto more lines."""
HEALTH_PLANNED = 16
"""HEALTH may wrap (a crash cause is long): it counts this wide when columns are chosen."""


def _fitting_columns(
    rows: list[tuple[str, ...]], width: int, columns: tuple[str, ...]
) -> tuple[list[str], bool]:
    """The server columns that fit `width` whole, dropping those of DROP_FIRST in order, and
    whether they fit (False: even NAME, PID, PORT and HEALTH are too wide)."""
    widths = {
        column: max([len(column)] + [len(row[i]) for row in rows])
        for i, column in enumerate(columns)
    }
    widths["HEALTH"] = min(widths["HEALTH"], HEALTH_PLANNED)
    shown = list(columns)

    def fits() -> bool:
        return sum(widths[c] for c in shown) + 2 * (len(shown) - 1) <= width

    for column in DROP_FIRST:
        if column not in shown:
            continue
        if fits():
            break
        shown.remove(column)
    return shown, fits()


def _servers(snapshot: Snapshot, width: int) -> list[Text | Table]:
    if not snapshot.servers:
        return [Text("Servers: none running", style="dim")]
    columns = columns_for(snapshot.servers)
    # names, health and log lines quote the servers: their control characters are shown
    rows = [tuple(map(printable, server_row(s, CONTAINER in columns))) for s in snapshot.servers]
    shown, fits = _fitting_columns(rows, width, columns)
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False, title_justify="left")
    for column in shown:
        # only HEALTH wraps, unless even the names do not fit: then they fold (never an
        # ellipsis: a PID, a port or a name must be read whole)
        wraps = column == "HEALTH" or (column == "NAME" and not fits)
        table.add_column(column, no_wrap=not wraps, overflow="fold")
    index = [columns.index(column) for column in shown]
    for row in rows:
        table.add_row(*(row[i] for i in index))
    notes: list[Text] = []
    left_out = [column for column in columns if column not in shown]
    if left_out:
        notes.append(
            Text(f"  left out at {width} columns: {', '.join(left_out)}; --json has all",
                 style="dim")
        )  # fmt: skip
    for server in snapshot.servers:
        if server.reachable_via and server.health == READY:
            notes.append(Text(f"  {server.name}: {server.reachable_via}", style="dim"))
        if server.health != READY:
            note = printable(f"  {server.name}: {health_text(server)}")
            notes.append(Text(note, style="yellow"))
            for line in server.log_tail[-3:]:
                notes.append(Text(printable(f"    {line}"), style="dim"))
        if server.proxy is not None and server.proxy.open_on_network:
            notes.append(
                Text(
                    f"  {server.name}: proxy on {server.proxy.host}:{server.proxy.port} answers "
                    "without a token — anyone on the network can use it",
                    style="bold red",
                )
            )
    return [Text("Servers (* = not started by sparktop)", style="bold"), table, *notes]


def print_status(snapshot: Snapshot, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(render_status(snapshot, width=console.width))
