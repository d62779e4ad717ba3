"""Which running servers to stop so that a model fits: the smallest set, least recently used
first, never one marked `keep`.

A pure choice over plain values; the action layer (`actions.servers.plan_serve`) builds the
candidates from the servers the monitor sees, their last activity (`servers.idle`) and the
catalog's `keep: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Generic, TypeVar

from sparktop.servers.info import ServerInfo
from sparktop.units import fmt_bytes, fmt_duration

T = TypeVar("T")

MAX_CANDIDATES = 16
"""More servers than this on one box is no case to optimise: the extra ones (most recently
active first) are left out of the search, which stays a few thousand sets at most."""


@dataclass(frozen=True)
class Candidate(Generic[T]):
    """A running server that could be stopped to make room."""

    item: T
    """What the caller needs back (a ServerInfo)."""
    freed_bytes: int
    """Memory stopping it gives back (its RSS, plus its GPU memory on a unified pool)."""
    last_active: float
    """When it last had a request (seconds since the epoch)."""
    keep: bool = False
    """The catalog says never to stop it to make room."""


def choose(
    needed_bytes: int, available_bytes: int, candidates: Sequence[Candidate[T]]
) -> tuple[Candidate[T], ...] | None:
    """The servers to stop so that `available_bytes` plus what they free reaches
    `needed_bytes`: as few as possible; among sets of that size, the least recently used
    (compared member by member, oldest first). () when it fits already; None when even
    stopping every candidate not marked `keep` would not do."""
    shortfall = needed_bytes - available_bytes
    if shortfall <= 0:
        return ()
    usable = sorted(
        (c for c in candidates if not c.keep and c.freed_bytes > 0),
        key=lambda c: (c.last_active, -c.freed_bytes),
    )[:MAX_CANDIDATES]
    if sum(c.freed_bytes for c in usable) < shortfall:
        return None
    biggest = sorted((c.freed_bytes for c in usable), reverse=True)
    size = next(k for k in range(1, len(biggest) + 1) if sum(biggest[:k]) >= shortfall)
    # combinations() of the oldest-first list come oldest-first: the first that frees enough
    for chosen in combinations(usable, size):
        if sum(c.freed_bytes for c in chosen) >= shortfall:
            return chosen
    return None  # not reached: the `size` biggest free enough


@dataclass(frozen=True)
class Eviction:
    """A server a serve stops first to make room, with the figures the plan shows."""

    server: ServerInfo
    freed_bytes: int
    idle_s: float

    def text(self) -> str:
        """`stop qwen3-coder-30b (idle 2h 05m, 31.2 GiB)`."""
        return (
            f"stop {self.server.name} (idle {fmt_duration(self.idle_s)}, "
            f"{fmt_bytes(self.freed_bytes)})"
        )
