"""Fixed-length sample histories for sparklines (one per metric)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

BLOCKS = "▁▂▃▄▅▆▇█"


class History:
    """The last `size` samples of a 0..100 metric."""

    def __init__(self, size: int = 60) -> None:
        self.size = size
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        """Samples ever added (the deque keeps the last `size`)."""

    def add(self, value: float) -> None:
        self._samples.append(max(0.0, min(100.0, value)))
        self.count += 1

    def __len__(self) -> int:
        return len(self._samples)

    def values(self) -> list[float]:
        return list(self._samples)

    def columns(self, per: int) -> list[float]:
        """Averages of complete groups of `per` samples, grouped by absolute sample number.

        Groups are fixed in time, so a chart of columns changes only when a group completes
        (every `per` samples) instead of shifting on every sample.
        """
        if per <= 1:
            return self.values()
        samples = self.values()
        first = self.count - len(samples)  # absolute number of samples[0]
        start = (-first) % per  # skip a partial group at the old end
        end = len(samples) - (self.count % per)  # and the group still filling
        return [sum(samples[i : i + per]) / per for i in range(start, max(start, end), per)]


def sparkline(values: Iterable[float], width: int, low: float = 0.0, high: float = 100.0) -> str:
    """Right-aligned block sparkline of the last `width` values, padded with spaces."""
    items = list(values)[-width:] if width > 0 else []
    span = (high - low) or 1.0
    chars = []
    for value in items:
        level = int((value - low) / span * (len(BLOCKS) - 1) + 0.5)
        chars.append(BLOCKS[max(0, min(len(BLOCKS) - 1, level))])
    return " " * (max(0, width) - len(chars)) + "".join(chars)


def chart(
    values: Iterable[float], width: int, height: int, low: float = 0.0, high: float = 100.0
) -> list[str]:
    """A `height`-row block chart of the last `width` values (top row first), right-aligned,
    with eighth-block resolution in the top cell of each column."""
    if width <= 0 or height <= 0:
        return []
    items = list(values)[-width:]
    span = (high - low) or 1.0
    levels = [max(0, min(height * 8, round((value - low) / span * height * 8))) for value in items]
    pad = width - len(levels)
    rows = []
    for row in range(height - 1, -1, -1):
        floor = row * 8
        cells = []
        for level in levels:
            filled = level - floor
            cells.append("█" if filled >= 8 else (" " + BLOCKS)[filled] if filled > 0 else " ")
        rows.append(" " * pad + "".join(cells))
    return rows
