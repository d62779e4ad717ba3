"""Servers that sparktop started, remembered in `<state>/servers.json` across restarts.

The TUI and CLI verbs may run at once (a second shell), so every read-modify-write holds an
flock on `servers.lock`; writes are atomic, so a crash never leaves half a file. How each
server ended is in `<state>/exits/<pid>.json` (written by its waiter, see exits.py); a record
that is forgotten takes its exit file with it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.atomic import locked, read_json_state, set_aside, write_json_atomic

VERSION = 1


@dataclass
class ManagedServer:
    name: str
    """Catalog entry name."""
    served_name: str
    engine: str
    pid: int
    pgid: int
    start_ticks: int
    host: str
    port: int
    argv: list[str]
    log_path: str
    started_at: float = field(default_factory=time.time)
    stop_requested: bool = False
    exit_code: int | None = None
    ended_at: float | None = None
    proxy_port: int | None = None
    rpc_workers: list[dict[str, Any]] = field(default_factory=list)
    """llama.cpp RPC workers of a split-served head: endpoint, host, started (by sparktop),
    remote, pid, pgid, start_ticks, log_path. Stopping the head stops the started ones."""
    container_name: str | None = None
    """Served through serve.container: the container's name (`sparktop-ENTRY`)."""
    container_runtime: str | None = None
    """…and the runtime CLI that runs it (docker, podman): stop is `RUNTIME stop NAME`."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields written by a newer sparktop: kept as they are and written back."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManagedServer | None:
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        # records from before a field existed: derive what can be derived
        if "pid" in known:
            known.setdefault("pgid", known["pid"])
            known.setdefault("served_name", known.get("name"))
        try:
            record = cls(**known)
        except TypeError:
            return None
        record.extra = {k: v for k, v in data.items() if k not in names}
        return record

    @property
    def stop_argv(self) -> list[str] | None:
        """`docker stop sparktop-ENTRY` for a server sparktop runs in a container; else None."""
        if not (self.container_name and self.container_runtime):
            return None
        return [self.container_runtime, "stop", self.container_name]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**extra, **data}


class Registry:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or paths.state_dir()
        self.path = self.directory / "servers.json"
        self.problem: str | None = None
        self._damaged = False

    def logs_dir(self) -> Path:
        return self.directory / "logs"

    def exits_dir(self) -> Path:
        return self.directory / "exits"

    def _drop_exits(self, keep: set[int], min_age_s: float = 60.0) -> None:
        """Remove the exit files of servers no record remembers any more (but not a fresh
        one: a server that ended at once may be recorded a moment after its waiter wrote)."""
        try:
            paths = [p for p in self.exits_dir().iterdir() if p.suffix == ".json"]
        except OSError:
            return
        now = time.time()
        for path in paths:
            if not path.stem.isdigit() or int(path.stem) in keep:
                continue
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime >= min_age_s:
                    path.unlink()

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.directory / "servers.lock")

    def _read(self) -> list[ManagedServer]:
        items, problem, damaged = read_json_state(
            self.path, "servers", "managed servers not re-adopted"
        )
        if problem:
            self.problem, self._damaged = problem, damaged
        out = []
        for item in items:
            record = ManagedServer.from_json(item) if isinstance(item, dict) else None
            if record is not None:
                out.append(record)
        if len(out) < len(items):
            self.problem = f"{self.path}: {len(items) - len(out)} unreadable record(s) skipped"
            self._damaged = True
        return out

    def load(self) -> list[ManagedServer]:
        return self._read()

    def _write(self, records: list[ManagedServer]) -> None:
        """Write all records; a damaged file is first set aside (`servers.json.damaged-…`)."""
        if self._damaged and set_aside(self.path) is not None:
            self._damaged = False
        write_json_atomic(
            self.path, {"version": VERSION, "servers": [r.to_json() for r in records]}
        )

    def add(self, record: ManagedServer) -> None:
        with self._locked():
            records = [r for r in self._read() if r.pid != record.pid]
            records.append(record)
            self._write(records)

    def update(self, pid: int, **changes: Any) -> bool:
        """Change one record. A failed write (disk full) keeps the previous file, is kept in
        `.problem` and returns False: the server itself was already started or stopped."""
        try:
            with self._locked():
                records = self._read()
                for record in records:
                    if record.pid == pid:
                        for key, value in changes.items():
                            setattr(record, key, value)
                self._write(records)
        except OSError as exc:
            return self._write_failed(exc)
        return True

    def remove(self, pid: int) -> bool:
        try:
            with self._locked():
                records = [r for r in self._read() if r.pid != pid]
                self._write(records)
                self._drop_exits({r.pid for r in records})
        except OSError as exc:
            return self._write_failed(exc)
        return True

    def _write_failed(self, exc: OSError) -> bool:
        import logging

        self.problem = f"cannot update {self.path}: {exc.strerror or exc}"
        logging.getLogger("sparktop").warning("%s", self.problem)
        return False

    def prune(self, keep_ended: int = 20) -> None:
        """Forget old ended records, keeping the newest few for their log tails."""
        with self._locked():
            records = self._read()
            ended = [r for r in records if r.ended_at is not None]
            ended.sort(key=lambda r: r.ended_at or 0)
            drop = {id(r) for r in ended[:-keep_ended]} if len(ended) > keep_ended else set()
            kept = [r for r in records if id(r) not in drop]
            self._write(kept)
            self._drop_exits({r.pid for r in kept})


def process_matches(proc: Path, pid: int, start_ticks: int) -> bool:
    """Is `pid` still the very process we started (not a recycled PID)?"""
    from sparktop.servers.procscan import read_stat

    stat = read_stat(proc, pid)
    return stat is not None and stat.start_ticks == start_ticks and stat.state != "Z"


def tail(path: str | os.PathLike[str], lines: int = 20, max_bytes: int = 65536) -> list[str]:
    """Last `lines` lines of a log file (reads at most `max_bytes` from its end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:]
