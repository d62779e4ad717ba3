"""What was read from a model file, kept across runs while the file is unchanged.

One small JSON file in the state directory maps a file's absolute path to its size, its
mtime (ns) and a record (plain JSON values). A record counts only while both still match.
The file is a cache: one that cannot be read or parsed is ignored and rewritten, and two
processes storing at once lose one record at worst (each write is atomic).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.atomic import write_json_atomic

KEEP = 256
"""Records kept, the most recently stored first to go last."""
_VERSION = 1


def cache_file() -> Path:
    return paths.state_dir() / "gguf-shapes.json"


def _records() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        return {}
    records = data.get("files")
    return records if isinstance(records, dict) else {}


def lookup(path: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
    """The record stored for `path` while it had this size and mtime, else None."""
    found = _records().get(os.path.abspath(path))
    if not isinstance(found, dict):
        return None
    record = found.get("record")
    unchanged = found.get("size") == size and found.get("mtime_ns") == mtime_ns
    return record if unchanged and isinstance(record, dict) else None


def store(path: str, size: int, mtime_ns: int, record: dict[str, Any]) -> None:
    """Keep `record` for `path` at this size and mtime; a cache that cannot be written is
    left as it is (the next run reads the file again)."""
    records = _records()
    key = os.path.abspath(path)
    records.pop(key, None)
    records[key] = {"size": size, "mtime_ns": mtime_ns, "record": record}
    kept = dict(list(records.items())[-KEEP:])
    with contextlib.suppress(OSError):
        write_json_atomic(cache_file(), {"version": _VERSION, "files": kept})
