"""Human-readable numbers for bytes, durations and rates."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def fmt_bytes(value: float | None, digits: int = 1) -> str:
    """1536 -> '1.5 KiB'; None -> '—'."""
    if value is None:
        return "—"
    size = float(value)
    sign = "-" if size < 0 else ""
    size = abs(size)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{sign}{int(size)} B"
            return f"{sign}{size:.{digits}f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fmt_duration(seconds: float | None) -> str:
    """Compact uptime: '3d 4h', '2h 05m', '4m 10s', '12s'."""
    if seconds is None:
        return "—"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def fmt_uptime(seconds: float | None) -> str:
    """Uptime for a status line: minute resolution, so the line does not redraw every second."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds) // 60}m"
    return fmt_duration(seconds)
