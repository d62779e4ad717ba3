"""Prometheus text format, as much as the engines' `/metrics` use, and counter rates."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LINE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def parse(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition; lines that do not parse are skipped."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        labels = tuple(_LABEL.findall(match.group("labels") or ""))
        out.append(Sample(match.group("name"), labels, value))
    return out


def totals(samples: list[Sample]) -> dict[str, float]:
    """Sum of each metric over its label sets (one server may report per-model series)."""
    out: dict[str, float] = {}
    for sample in samples:
        if math.isnan(sample.value):
            continue
        labels = dict(sample.labels)
        # SGLang repeats each gauge per tensor/pipeline-parallel rank: count rank 0 only.
        if labels.get("tp_rank", "0") != "0" or labels.get("pp_rank", "0") != "0":
            continue
        out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def first(values: dict[str, float], *names: str) -> float | None:
    """The first of `names` that the server reports (engines renamed metrics over versions)."""
    for name in names:
        if name in values:
            return values[name]
    return None


class RateTracker:
    """Per-second rates of monotonically increasing counters between two polls."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float]] = {}

    def rate(self, key: str, value: float | None, now: float) -> float | None:
        if value is None:
            return None
        previous = self._last.get(key)
        self._last[key] = (now, value)
        if previous is None:
            return None
        then, old = previous
        if now <= then or value < old:  # first sample, clock oddity, or counter reset
            return None
        return (value - old) / (now - then)
