"""System memory from /proc/meminfo — the truth on unified-memory machines."""

from __future__ import annotations

from pathlib import Path

from sparktop.snapshot import MemoryInfo


def parse_meminfo(text: str) -> dict[str, int]:
    """`MemTotal:  123 kB` lines -> {'MemTotal': 123 * 1024}. Unit-less lines stay as is."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            number = int(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1].lower() == "kb":
            number *= 1024
        values[key.strip()] = number
    return values


def memory_from_meminfo(values: dict[str, int]) -> MemoryInfo:
    """Derive the figures `free` shows; MemAvailable falls back to free+cache on old kernels."""
    total = values["MemTotal"]
    free = values.get("MemFree", 0)
    cached = values.get("Buffers", 0) + values.get("Cached", 0) + values.get("SReclaimable", 0)
    used = total - free - cached
    if used < 0:  # seen in containers with odd accounting; never report negative
        used = total - free
    available = values.get("MemAvailable", min(total, free + cached))
    swap_total = values.get("SwapTotal", 0)
    swap_used = swap_total - values.get("SwapFree", swap_total)
    return MemoryInfo(
        total_bytes=total,
        available_bytes=available,
        free_bytes=free,
        used_bytes=used,
        cached_bytes=cached,
        swap_total_bytes=swap_total,
        swap_used_bytes=swap_used,
    )


def read_memory(proc_root: Path = Path("/proc")) -> MemoryInfo:
    """Read /proc/meminfo; raises OSError or KeyError (no MemTotal) for the caller to report."""
    text = (proc_root / "meminfo").read_text()
    return memory_from_meminfo(parse_meminfo(text))
