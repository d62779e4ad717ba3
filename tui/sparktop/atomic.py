"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename.

    On any error (disk full, permission) the previous file is left untouched and the
    exception propagates to the caller. `mode`: the new file's permissions (default 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def set_aside(path: Path) -> Path | None:
    """Keep a damaged file (corrupt, truncated, unknown shape) as `<name>.damaged-<time>`
    before a fresh one replaces it, so nothing a user had is silently lost."""
    import time

    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, target)
    except OSError:
        return None
    return target


def read_json_state(path: Path, key: str, what: str) -> tuple[list[Any], str | None, bool]:
    """Read `{"<key>": [...]}` from a state file: (items, problem, damaged).

    A missing file is empty. A corrupt, truncated or odd-shaped one reads as empty with a
    one-line problem naming the file and `damaged` set, so the next write sets it aside
    (`set_aside`) instead of overwriting what the user had. An unreadable one (permission)
    is not damaged: it is left alone.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], None, False
    except (OSError, ValueError) as exc:
        return [], f"{path}: unreadable ({exc}); {what}", not isinstance(exc, PermissionError)
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], f"{path}: unexpected content; {what}", True
    return items, None, False


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_file` (created if needed) for a read-modify-write
    that another sparktop process (a second shell, the TUI) may do at the same time."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
