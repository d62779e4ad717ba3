"""Downloads remembered in `<data>/downloads.json`: finished and failed ones stay listed, and
one cut short (sparktop killed, SSH dropped) is found again as *interrupted* and resumed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.atomic import locked, read_json_state, set_aside, write_json_atomic
from sparktop.downloads.states import ACTIVE, QUEUED
from sparktop.snapshot import DownloadInfo

KEEP = 50
INTERRUPTED = "interrupted"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DownloadStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or paths.data_dir()
        self.path = self.directory / "downloads.json"
        self.problem: str | None = None
        self._damaged = False

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.directory / "downloads.lock")

    def _read(self) -> list[dict[str, Any]]:
        items, problem, damaged = read_json_state(
            self.path, "downloads", "download history not shown"
        )
        if problem:
            self.problem, self._damaged = problem, damaged
        return [d for d in items if isinstance(d, dict)]

    def load(self) -> list[dict[str, Any]]:
        """All records, newest last; a running one whose process is gone reads *interrupted*."""
        records = self._read()
        for record in records:
            if record.get("state") in (*ACTIVE, QUEUED):
                pid = record.get("pid")
                if not isinstance(pid, int) or not _alive(pid):
                    record["state"] = INTERRUPTED
        return records

    def infos(self) -> list[DownloadInfo]:
        """The records as the views show them; one of an unreadable shape is left out."""
        out = []
        for record in self.load():
            with contextlib.suppress(TypeError, ValueError):
                out.append(DownloadInfo.from_json(record))
        return out

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace the record with the same id (written atomically, under a lock)."""
        record = dict(record, pid=os.getpid())
        with self._locked():
            records = [r for r in self._read() if r.get("id") != record.get("id")]
            records.append(record)
            if self._damaged and set_aside(self.path) is not None:
                self._damaged = False  # the damaged file is kept beside, not overwritten
            write_json_atomic(self.path, {"version": 1, "downloads": records[-KEEP:]})

    def interrupted_like(self, record: dict[str, Any]) -> list[str]:
        """Ids of the interrupted records of the same download (repo, revision, files, local
        dir) as `record`, oldest first: what a new run of it supersedes."""
        key = _same_download(record)
        return [r["id"] for r in self.load()
                if r.get("state") == INTERRUPTED and isinstance(r.get("id"), str)
                and r["id"] != record.get("id") and _same_download(r) == key]  # fmt: skip

    def remove(self, ids: set[str]) -> None:
        """Drop the records with these ids (superseded by a newer run of the same download)."""
        if not ids:
            return
        with self._locked():
            records = [r for r in self._read() if r.get("id") not in ids]
            write_json_atomic(self.path, {"version": 1, "downloads": records[-KEEP:]})


def _same_download(record: dict[str, Any]) -> tuple[Any, ...]:
    include = record.get("include") or ()
    return (record.get("repo"), record.get("revision") or "main", str(record.get("local_dir")),
            tuple(sorted(include)) if isinstance(include, (list, tuple)) else include)  # fmt: skip
