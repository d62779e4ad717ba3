"""When a run's figures are too scattered to trust: a standard deviation above 20 % of the
median marks the run *noisy* (something else ran on the box, clocks or caches moved)."""

from __future__ import annotations

from collections.abc import Iterable

NOISY_SPREAD = 0.20
"""A figure is noisy when its standard deviation exceeds this share of its median."""


def spread(median: float | None, stdev: float | None) -> float | None:
    """Standard deviation as a share of the median (None when either is unknown or 0)."""
    if not median or stdev is None:
        return None
    return abs(stdev / median)


def noise_note(figures: Iterable[tuple[str, float | None, float | None]]) -> str | None:
    """ "decode ±27%, TTFT ±22%": each (name, median, stdev) whose spread exceeds the rule;
    None when every figure is steady."""
    parts = []
    for name, median, stdev in figures:
        share = spread(median, stdev)
        if share is not None and share > NOISY_SPREAD:
            pct = share * 100
            parts.append(f"{name} ±{pct:.0f}%" if pct >= 20.5 else f"{name} ±{pct:.1f}%")
    return ", ".join(parts) or None
