"""The one error type of the action layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparktop.snapshot import ServerInfo

FAILED = 1
"""Exit code of a CLI verb whose action failed."""
BAD_INPUT = 2
"""Exit code for bad arguments or config."""
INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


class ActionError(Exception):
    """Why an action did not happen: `str()` is one line naming what and where; `detail` the
    evidence (a log's last lines) that a face may show below it; `code` the CLI's exit code."""

    def __init__(self, message: str, detail: Sequence[str] = (), code: int = FAILED) -> None:
        super().__init__(message)
        self.detail = tuple(detail)
        self.code = code


class Cancelled(ActionError):
    """The user cancelled (Ctrl-C, `esc`, `x`); what was done so far is kept."""

    def __init__(self, message: str = "cancelled", detail: Sequence[str] = ()) -> None:
        super().__init__(message, detail, code=INTERRUPTED)


class AmbiguousServer(ActionError):
    """A name that several running servers answer to, none of them the one sparktop started
    for that catalog entry: `candidates` are those servers (a face may offer a choice), and
    `str()` lists them with PID and port in one line."""

    def __init__(self, target: str, candidates: Sequence[ServerInfo]) -> None:
        listed = ", ".join(s.who for s in candidates)
        super().__init__(
            f"{target!r} matches {len(candidates)} servers: {listed}; give a PID or port",
            code=BAD_INPUT,
        )
        self.target = target
        self.candidates = tuple(candidates)
