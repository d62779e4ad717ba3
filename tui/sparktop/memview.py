"""How memory is split for the stacked bar, shared by the TUI and `sparktop status`."""

from __future__ import annotations

from dataclasses import dataclass

from sparktop.snapshot import Snapshot


@dataclass(frozen=True)
class Share:
    key: str  # gpu | other | cache | free
    label: str
    bytes: int


def memory_shares(snapshot: Snapshot) -> list[Share]:
    """GPU processes / other processes / page cache / free; the four add up to total.

    Only unified GPUs hold system memory, so on a discrete-GPU box the GPU share is zero.
    """
    memory = snapshot.memory
    if memory is None:
        return []
    gpu = min(snapshot.gpu_held_bytes, memory.used_bytes) if snapshot.unified else 0
    return [
        Share("gpu", "GPU processes", gpu),
        Share("other", "other processes", memory.used_bytes - gpu),
        Share("cache", "page cache", memory.cached_bytes),
        Share("free", "free", memory.free_bytes),
    ]


def bar_cells(shares: list[Share], width: int) -> list[tuple[str, int]]:
    """Split `width` cells between shares by size (largest remainder), keeping small
    non-zero shares visible with at least one cell when there is room."""
    total = sum(s.bytes for s in shares)
    if width <= 0 or total <= 0:
        return [(s.key, 0) for s in shares]
    exact = [s.bytes * width / total for s in shares]
    cells = [int(x) for x in exact]
    for i, share in enumerate(shares):
        if share.bytes > 0 and cells[i] == 0 and sum(cells) < width:
            cells[i] = 1
    order = sorted(range(len(shares)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in order:
        if sum(cells) >= width:
            break
        cells[i] += 1
    while sum(cells) > width:
        biggest = max(range(len(cells)), key=lambda i: cells[i])
        cells[biggest] -= 1
    return [(s.key, c) for s, c in zip(shares, cells, strict=True)]
