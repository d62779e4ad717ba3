"""A host's full `status --json` document as plain lines (the fleet view's detail)."""

from __future__ import annotations

from typing import Any

from sparktop.units import fmt_bytes, fmt_duration


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.{digits}f}{unit}"


def describe_status(doc: dict[str, Any]) -> list[str]:
    """Memory, GPUs, servers and downloads of one host, from its status document."""
    lines = [f"{doc.get('hostname') or '?'} · up {fmt_duration(doc.get('uptime_s'))}"]
    memory = doc.get("memory")
    if memory:
        lines += [
            "",
            "Memory" + ("  unified with the GPU" if memory.get("unified") else ""),
            f"  total {fmt_bytes(memory.get('total_bytes'))} · "
            f"used {fmt_bytes(memory.get('used_bytes'))} · "
            f"available {fmt_bytes(memory.get('available_bytes'))} · "
            f"cache {fmt_bytes(memory.get('cached_bytes'))} · "
            f"swap {fmt_bytes(memory.get('swap_used_bytes'))} of "
            f"{fmt_bytes(memory.get('swap_total_bytes'))}",
        ]
        if memory.get("gpu_bytes") is not None:
            lines.append(f"  held by GPU work {fmt_bytes(memory.get('gpu_bytes'))}")
    elif doc.get("memory_error"):
        lines += ["", f"Memory: {doc['memory_error']}"]
    for hint in doc.get("hints") or []:
        lines.append(f"  hint: {hint.get('message')}")
    lines += ["", f"GPUs ({len(doc.get('gpus') or [])})"]
    for gpu in doc.get("gpus") or []:
        power = _num(gpu.get("power_w"), " W")
        lines.append(
            f"  {gpu.get('index')}: {gpu.get('name')} · util "
            f"{_num(gpu.get('utilization_percent'), '%')} · temp "
            f"{_num(gpu.get('temperature_c'), '°C')} · power {power} · memory "
            f"{fmt_bytes(gpu.get('memory_used_bytes'))} of "
            f"{fmt_bytes(gpu.get('memory_total_bytes'))}"
            + (" (unified)" if gpu.get("unified") else "")
        )
        if gpu.get("error"):
            lines.append(f"     {gpu['error']}")
    if not doc.get("gpus"):
        lines.append(f"  {doc.get('gpu_unavailable_reason') or 'no GPU found'}")
    servers = doc.get("servers") or []
    lines += ["", f"Servers ({len(servers)})"]
    for s in servers:
        mark = "" if s.get("managed") else "*"
        lines.append(
            f"  {s.get('name')}{mark} · {s.get('engine')} · pid {s.get('pid')} · "
            f"port {s.get('port')} · {s.get('health')} · up {fmt_duration(s.get('uptime_s'))}"
            f" · mem {fmt_bytes(s.get('rss_bytes'))} · pp {_num(s.get('prompt_tps'), ' t/s', 1)}"
            f" · tg {_num(s.get('gen_tps'), ' t/s', 1)}"
        )
    if not servers:
        lines.append("  none running")
    downloads = doc.get("downloads") or []
    lines += ["", f"Downloads ({len(downloads)})"]
    for d in downloads[-10:]:
        what = d.get("repo") or d.get("path") or "?"
        percent = _num(d.get("percent"), "%", 1)
        total = fmt_bytes(d.get("total_bytes"))
        lines.append(f"  {what} · {d.get('state')} · {percent} of {total}")
    if not downloads:
        lines.append("  none")
    return lines
