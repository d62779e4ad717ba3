"""One download of a file at a time: a lock per file (the `filelock` package, which
huggingface_hub itself uses), at the path `hf download --local-dir` locks too, so two
sparktop processes, the TUI and a shell, or sparktop and `hf download` never write the same
file at once. The second one waits (and says so), or with `wait=False` gives up at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

POLL_S = 0.25
"""How often a waiting download looks at its cancel flag."""


class Busy(Exception):
    """Another download holds the file and the caller would not wait."""


def take(
    path: Path, cancel: threading.Event, *, wait: bool = True, waiting: Callable[[], None]
) -> FileLock | None:
    """The file's lock, held; `waiting()` is called once if another download holds it.
    None when `cancel` was set while waiting; raises `Busy` when held and not `wait`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), mode=0o664)  # group-writable, as huggingface_hub makes it
    try:
        lock.acquire(timeout=0)
        return lock
    except Timeout:
        if not wait:
            raise Busy() from None
    waiting()
    while not cancel.is_set():
        try:
            lock.acquire(timeout=POLL_S)
            return lock
        except Timeout:
            continue
    return None
