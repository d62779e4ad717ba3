"""A host's whole state as plain lines (the fleet view's detail), from its Snapshot."""

from __future__ import annotations

from typing import Any

from sparktop.snapshot import Snapshot
from sparktop.units import fmt_bytes, fmt_duration


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.{digits}f}{unit}"


def describe_status(snapshot: Snapshot) -> list[str]:
    """Memory, GPUs, servers and downloads of one host (another host's status document is
    read with `Snapshot.from_json`)."""
    s = snapshot
    lines = [f"{s.hostname} · up {fmt_duration(s.uptime_s)}"]
    memory = s.memory
    if memory is not None:
        lines += [
            "",
            "Memory" + ("  unified with the GPU" if s.unified else ""),
            f"  total {fmt_bytes(memory.total_bytes)} · used {fmt_bytes(memory.used_bytes)} · "
            f"available {fmt_bytes(memory.available_bytes)} · "
            f"cache {fmt_bytes(memory.cached_bytes)} · "
            f"swap {fmt_bytes(memory.swap_used_bytes)} of {fmt_bytes(memory.swap_total_bytes)}",
        ]
        if s.unified:
            lines.append(f"  held by GPU work {fmt_bytes(s.gpu_held_bytes)}")
    elif s.memory_error:
        lines += ["", f"Memory: {s.memory_error}"]
    lines += [f"  hint: {hint.message}" for hint in s.hints]
    lines += ["", f"GPUs ({len(s.gpus)})"]
    for gpu in s.gpus:
        lines.append(
            f"  {gpu.index}: {gpu.name} · util {_num(gpu.utilization_percent, '%')} · temp "
            f"{_num(gpu.temperature_c, '°C')} · power {_num(gpu.power_w, ' W')} · memory "
            f"{fmt_bytes(gpu.memory_used_bytes)} of {fmt_bytes(gpu.memory_total_bytes)}"
            + (" (unified)" if gpu.unified else "")
        )
        if gpu.error:
            lines.append(f"     {gpu.error}")
    if not s.gpus:
        lines.append(f"  {s.gpu_unavailable_reason or 'no GPU found'}")
    lines += ["", f"Servers ({len(s.servers)})"]
    for v in s.servers:
        where = "".join(  # Prometheus exports no PIDs (a label each would be unbounded)
            f" · {key} {value}" for key, value in (("pid", v.pid), ("port", v.port)) if value
        )
        lines.append(
            f"  {v.name}{'' if v.managed else '*'} · {v.engine}{where}"
            f" · {v.health} · up {fmt_duration(v.uptime_s)} · mem {fmt_bytes(v.rss_bytes)}"
            f" · pp {_num(v.prompt_tps, ' t/s', 1)} · tg {_num(v.gen_tps, ' t/s', 1)}"
        )
    if not s.servers:
        lines.append("  none running")
    lines += ["", f"Downloads ({len(s.downloads)})"]
    for d in s.downloads[-10:]:
        what = d.repo or getattr(d, "path", None) or "?"
        lines.append(
            f"  {what} · {d.state} · {_num(d.percent, '%', 1)} of {fmt_bytes(d.total_bytes)}"
        )
    if not s.downloads:
        lines.append("  none")
    return lines
