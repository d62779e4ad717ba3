"""Progress of a running action, one type for every action and both faces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FAILED = "failed"
"""The stage of an event that reports a failure (as the supervisor's serve events do)."""


@dataclass(frozen=True)
class Event:
    """One step of an action: the CLI prints `line()`, the TUI shows it in a progress line.

    `stage` is a short word (planning, stopping, starting, loading, ready, failed, testing,
    running, downloading …); `detail` carries evidence such as a log's last lines.
    """

    action: str
    stage: str
    message: str
    elapsed_s: float = 0.0
    detail: tuple[str, ...] = ()
    fraction: float | None = None
    """0..1 when the action knows how far it is (downloads, benchmark repetitions)."""

    def line(self) -> str:
        return f"[{self.elapsed_s:6.1f}s] {self.stage}: {self.message}"


Report = Callable[[Event], None]


def quiet(_event: Event) -> None:
    """A Report that shows nothing (scripts, tests, queued runs)."""
