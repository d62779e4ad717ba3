"""Run a download: files fetched through huggingface_hub's own HTTP client (auth, retries),
into stable partial files that resume, then verified and moved into place.

Progress arrives through the client's `tqdm_class` hook; cancelling raises from that hook,
which stops the transfer and leaves the partial file for the next attempt.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparktop.downloads import verify
from sparktop.downloads.hub import DownloadPlan, endpoint, token
from sparktop.downloads.partial import bad_path, final_path, partial_path
from sparktop.downloads.states import (  # re-exported: the runner's own words
    ACTIVE as ACTIVE,
)
from sparktop.downloads.states import (
    CANCELLED as CANCELLED,
)
from sparktop.downloads.states import (
    CORRUPT as CORRUPT,
)
from sparktop.downloads.states import (
    DONE as DONE,
)
from sparktop.downloads.states import (
    ENDED as ENDED,
)
from sparktop.downloads.states import (
    FAILED as FAILED,
)
from sparktop.downloads.states import (
    QUEUED as QUEUED,
)
from sparktop.downloads.states import (
    RUNNING as RUNNING,
)
from sparktop.downloads.states import (
    VERIFYING as VERIFYING,
)
from sparktop.snapshot import DownloadInfo

CHUNK_BYTES = 256 * 1024


class Cancelled(Exception):
    pass


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its text."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class FileProgress:
    path: str
    size: int
    sha256: str | None
    done_bytes: int = 0
    resumed_from: int = 0
    state: str = QUEUED
    error: str | None = None
    speed_bps: float = 0.0
    _mark: tuple[float, int] = (0.0, 0)

    def sample_speed(self, now: float) -> None:
        """Exponentially smoothed speed, updated at most twice a second."""
        then, bytes_then = self._mark
        if then == 0.0:
            self._mark = (now, self.done_bytes)
            return
        if now - then < 0.5:
            return
        rate = (self.done_bytes - bytes_then) / (now - then)
        self.speed_bps = rate if self.speed_bps == 0 else 0.3 * rate + 0.7 * self.speed_bps
        self._mark = (now, self.done_bytes)


@dataclass
class DownloadJob:
    repo: str
    revision: str
    local_dir: Path
    include: tuple[str, ...] = ()
    files: list[FileProgress] = field(default_factory=list)
    state: str = QUEUED
    error: str | None = None
    commit: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set by the runner once the job has ended and its record is written: what a blocking
    caller waits on (an interrupted `Thread.join` can return while the thread still runs)."""
    parallel: int | None = field(default=None, repr=False)
    """Files at once for this job; None: the runner's default."""
    _speed: float = 0.0
    _mark: tuple[float, int] = (0.0, 0)

    def sample_speed(self, now: float) -> None:
        """Smoothed bytes/s of the whole job (steady across files finishing and starting)."""
        then, before = self._mark
        done = self.done_bytes
        if then == 0.0 or done < before:
            self._mark = (now, done)
            return
        if now - then < 0.5:
            return
        rate = (done - before) / (now - then)
        self._speed = rate if self._speed == 0 else 0.3 * rate + 0.7 * self._speed
        self._mark = (now, done)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def done_bytes(self) -> int:
        return sum(f.done_bytes for f in self.files)

    @property
    def speed_bps(self) -> float:
        return self._speed if self.state == RUNNING else 0.0

    @property
    def eta_s(self) -> float | None:
        speed = self.speed_bps
        if speed <= 0:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / speed)

    @property
    def percent(self) -> float:
        total = self.total_bytes
        return 100.0 * self.done_bytes / total if total else 0.0

    def info(self) -> DownloadInfo:
        """This job as the views and `status --json` show it."""
        return DownloadInfo.from_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repo": self.repo,
            "revision": self.revision,
            "commit": self.commit,
            "local_dir": str(self.local_dir),
            "include": list(self.include),
            "state": self.state,
            "error": self.error,
            "total_bytes": self.total_bytes,
            "done_bytes": self.done_bytes,
            "percent": round(self.percent, 2),
            "speed_bps": round(self.speed_bps, 1),
            "eta_s": round(self.eta_s, 1) if self.eta_s is not None else None,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "done_bytes": f.done_bytes,
                    "resumed_from": f.resumed_from,
                    "state": f.state,
                    "error": f.error,
                    "speed_bps": round(f.speed_bps, 1),
                }
                for f in self.files
            ],
        }


Listener = Callable[[DownloadJob], None]


def settle(job: DownloadJob, problem: str | None = None) -> None:
    """The job's end state from its files' (cancelled before failed before corrupt); with
    `problem`, files that never ended are marked failed with it first (the runner broke)."""
    if problem is not None:
        for item in job.files:
            if item.state not in ENDED:
                item.state, item.error, item.speed_bps = FAILED, problem, 0.0
    states = {f.state for f in job.files}
    for state in (CANCELLED, FAILED, CORRUPT):
        if state in states:
            job.state = state
            if state != CANCELLED:
                job.error = next(f"{f.path}: {f.error}" for f in job.files if f.state == state)
            break
    else:
        job.state = DONE
    job.finished_at = time.time()


def job_from_plan(plan: DownloadPlan, include: tuple[str, ...] = ()) -> DownloadJob:
    return DownloadJob(
        repo=plan.repo,
        revision=plan.revision,
        commit=plan.commit,
        local_dir=plan.local_dir,
        include=include,
        files=[FileProgress(f.path, f.size, f.sha256) for f in plan.files],
    )


class Transfer:
    """Downloads one job's files, a few at a time, reporting progress to `listener`."""

    def __init__(self, job: DownloadJob, listener: Listener, parallel: int = 4) -> None:
        self.job = job
        self.listener = listener
        self.parallel = parallel
        self._lock = threading.Lock()
        self._last_note = 0.0

    def note(self, force: bool = False) -> None:
        now = time.monotonic()
        self.job.sample_speed(now)
        with self._lock:
            if not force and now - self._last_note < 0.2:
                return
            self._last_note = now
        self.listener(self.job)

    def run(self) -> DownloadJob:
        job = self.job
        job.state = RUNNING
        job._mark = (time.monotonic(), job.done_bytes)
        self.note(force=True)
        waiting = iter(job.files)
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    item = next(waiting, None)
                if item is None:
                    return
                self._file(item)

        # daemon threads, not a ThreadPoolExecutor (whose threads the interpreter joins at
        # exit): a process told to stop (Ctrl-C twice) does not wait for a read in flight
        workers = [
            threading.Thread(target=work, name=f"sparktop-dl-{job.id}-{n}", daemon=True)
            for n in range(max(1, min(self.parallel, len(job.files))))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        settle(job)
        self.note(force=True)
        return job

    def _bar_class(self, item: FileProgress) -> type:
        transfer = self

        class Bar:
            """The client's progress bar, pointed at our FileProgress."""

            def __init__(self, *args: object, total: int | None = None, initial: int = 0,
                         **kwargs: object) -> None:  # fmt: skip
                item.done_bytes = initial

            def update(self, n: float = 1) -> None:
                if transfer.job.cancel.is_set():
                    raise Cancelled()
                item.done_bytes += int(n)
                item.sample_speed(time.monotonic())
                transfer.note()

            def close(self) -> None:
                return None

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        return Bar

    def _file(self, item: FileProgress) -> None:
        """Every way a file can go wrong (disk, permissions, a failing sha256 read, a bug) ends
        as this file's state with one line; the other files go on."""
        try:
            self._fetch(item)
        except Exception as exc:
            doing = "verifying" if item.state == VERIFYING else "downloading"
            item.state = FAILED
            item.error = f"failed while {doing}: {one_line(exc)}"
            item.speed_bps = 0.0
            self.note(force=True)

    def _fetch(self, item: FileProgress) -> None:
        job = self.job
        if job.cancel.is_set():
            item.state = CANCELLED
            return
        final = final_path(job.local_dir, item.path)
        if final.is_file() and verify.is_verified(job.local_dir, item.path, item.size, item.sha256):
            item.done_bytes = item.size
            item.state = DONE
            self.note(force=True)
            return
        if final.is_file() and final.stat().st_size == item.size:
            self._verify(item, final, moved=True)  # downloaded before (by us or `hf download`)
            return
        part = partial_path(job.local_dir, item.path)
        part.parent.mkdir(parents=True, exist_ok=True)
        resume = part.stat().st_size if part.exists() else 0
        if resume > item.size:  # not this file's bytes: start over
            part.unlink()
            resume = 0
        item.resumed_from = item.done_bytes = resume
        item._mark = (time.monotonic(), resume)  # speed counts from here, not from 0
        item.state = RUNNING
        self.note(force=True)
        try:
            from huggingface_hub import constants, hf_hub_url
            from huggingface_hub.file_download import http_get
            from huggingface_hub.utils import build_hf_headers

            # The client reports progress once per chunk (10 MiB by default) and a dropped
            # connection loses the chunk in flight: 256 KiB chunks give a smooth bar, a prompt
            # cancel and little to fetch again after a drop.
            constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)

            url = hf_hub_url(job.repo, item.path, revision=job.commit or job.revision,
                             endpoint=endpoint())  # fmt: skip
            with open(part, "ab") as handle:
                http_get(
                    url,
                    handle,
                    resume_size=resume,
                    headers=build_hf_headers(token=token()),
                    expected_size=item.size,
                    displayed_filename=item.path,
                    tqdm_class=self._bar_class(item),
                )
        except Cancelled:
            item.state = CANCELLED
            item.speed_bps = 0.0
            self.note(force=True)
            return
        except Exception as exc:  # network, HTTP, disk: the partial file stays for resume
            from sparktop.downloads.hub import describe_hub_error

            item.state = FAILED
            item.error = describe_hub_error(exc, job.repo, job.revision)
            item.speed_bps = 0.0
            self.note(force=True)
            return
        item.speed_bps = 0.0
        self._verify(item, part, moved=False)

    def _verify(self, item: FileProgress, path: Path, moved: bool) -> None:
        job = self.job
        item.state = VERIFYING
        self.note(force=True)
        problem = verify.check(path, item.size, item.sha256)
        final = final_path(job.local_dir, item.path)
        if problem is not None:
            item.state = CORRUPT
            item.error = problem
            bad = bad_path(job.local_dir, item.path)
            bad.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, bad)  # out of the model's tree: `serve` never sees it
            self.note(force=True)
            return
        if not moved:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
        verify.write_stamp(job.local_dir, item.path, item.sha256)
        item.done_bytes = item.size
        item.state = DONE
        self.note(force=True)
