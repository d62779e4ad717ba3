"""Run a download: each file under its lock (`lock`), fetched the way the Hub offers it
(`fetch`: HTTP into a stable, versioned partial file that resumes, hashed as it arrives; or
huggingface_hub's own Xet transfer), verified against the Hub's size and sha256 and moved
into place. Every way a file can go wrong ends as that file's state with one line.
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

from sparktop.downloads import fetch, lock, partial, verify
from sparktop.downloads.fetch import Cancelled as Cancelled
from sparktop.downloads.hub import DownloadPlan
from sparktop.downloads.partial import Version, bad_path, final_path, partial_path
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
from sparktop.downloads.states import (
    WAITING as WAITING,
)
from sparktop.downloads.states import (
    WAITING_NOTE as WAITING_NOTE,
)
from sparktop.snapshot import DownloadInfo

CHUNK_BYTES = 256 * 1024
"""The most bytes a dropped connection loses (bytes are written as they arrive)."""
BUSY = "another download of this file is running: not waiting for it (--no-wait)"
"""A file's reason when another download holds it and the caller would not wait."""
XET_ADVICE = "HF_HUB_DISABLE_XET=1 fetches it over plain HTTP"


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its text."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class FileProgress:
    path: str
    size: int
    sha256: str | None
    etag: str | None = None
    """The Hub's ETag of this version (the sha256 of an LFS file, else the git blob id)."""
    done_bytes: int = 0
    resumed_from: int = 0
    state: str = QUEUED
    error: str | None = None
    note: str | None = None
    """What a face shows beside the file now: waiting for another download of it, or that a
    partial file of another version was discarded."""
    via: str | None = None
    """How the bytes came: "http" or "xet" (huggingface_hub's Xet transfer)."""
    speed_bps: float = 0.0
    arrived_bytes: int = 0
    """Bytes that came from the Hub in this run (not those already on disk when it began):
    what the job's speed counts."""
    _mark: tuple[float, int] = (0.0, 0)

    @property
    def version(self) -> Version:
        return Version(self.size, self.sha256, self.etag)

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
    wait: bool = field(default=True, repr=False)
    """Wait for another download of the same file to finish (else that file fails, BUSY)."""
    _speed: float = 0.0
    _mark: tuple[float, int] = (0.0, 0)

    def sample_speed(self, now: float) -> None:
        """Smoothed bytes/s of the whole job (steady across files finishing and starting),
        counting only bytes that arrived: a resumed file's bytes on disk are not speed."""
        then, before = self._mark
        done = self.arrived_bytes
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
    def arrived_bytes(self) -> int:
        """Bytes that came from the Hub in this run (the job's speed counts these)."""
        return sum(f.arrived_bytes for f in self.files)

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
                    "note": f.note,
                    "via": f.via,
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
        files=[
            FileProgress(f.path, f.size, f.sha256, f.etag, done_bytes=have, resumed_from=have)
            for f, have in zip(plan.files, plan.on_disk or [0] * len(plan.files), strict=True)
        ],
    )


class Transfer:
    """Downloads one job's files, a few at a time, reporting progress to `listener`."""

    def __init__(self, job: DownloadJob, listener: Listener, parallel: int = 8) -> None:
        self.job = job
        self.listener = listener
        self.parallel = parallel
        self._lock = threading.Lock()
        self._last_note = 0.0

    def note(self, force: bool = False) -> None:
        now = time.monotonic()
        job = self.job
        job.sample_speed(now)
        if job.state in (RUNNING, WAITING):  # waiting when every file in flight waits
            states = {f.state for f in job.files}
            job.state = WAITING if WAITING in states and not states & {RUNNING, VERIFYING} \
                else RUNNING  # fmt: skip
        with self._lock:
            if not force and now - self._last_note < 0.2:
                return
            self._last_note = now
        self.listener(job)

    def run(self) -> DownloadJob:
        job = self.job
        job.state = RUNNING
        job._mark = (time.monotonic(), job.arrived_bytes)
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

    def _progress(self, item: FileProgress) -> Callable[[int], None]:
        def moved(n: int) -> None:
            item.done_bytes += n
            item.arrived_bytes += n
            item.sample_speed(time.monotonic())
            self.note()

        return moved

    def _bar_class(self, item: FileProgress) -> type:
        """A tqdm-like class for huggingface_hub's Xet transfer, pointed at `item`."""
        moved = self._progress(item)

        class Bar:
            total: int | None = None

            def __init__(self, *args: object, initial: int = 0, **kwargs: object) -> None:
                item.done_bytes = initial

            def update(self, n: float = 1) -> None:
                moved(int(n))

            def update_transfer(self, n: float = 1) -> None:  # network bytes: not shown
                return None

            def set_postfix_str(self, *args: object, **kwargs: object) -> None:
                return None

            set_transfer_postfix_str = set_postfix_str

            def close(self) -> None:
                return None

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

        return Bar

    def _file(self, item: FileProgress) -> None:
        """Every way a file can go wrong (disk, permissions, a failing sha256 check, a bug)
        ends as this file's state with one line; the other files go on."""
        try:
            self._locked(item)
        except Exception as exc:
            doing = "verifying" if item.state == VERIFYING else "downloading"
            item.state = FAILED
            item.error = f"failed while {doing}: {one_line(exc)}"
            item.speed_bps = 0.0
            item.note = None
            self.note(force=True)

    def _locked(self, item: FileProgress) -> None:
        """Fetch the file holding its lock; wait (saying so) while another download has it."""
        job = self.job
        if job.cancel.is_set():
            item.state = CANCELLED
            return

        def waiting() -> None:
            item.state, item.note = WAITING, WAITING_NOTE
            self.note(force=True)

        try:
            held = lock.take(partial.lock_path(job.local_dir, item.path), job.cancel,
                             wait=job.wait, waiting=waiting)  # fmt: skip
        except lock.Busy:
            item.state, item.error = FAILED, BUSY
            self.note(force=True)
            return
        if held is None:
            item.state, item.note = CANCELLED, None
            self.note(force=True)
            return
        try:
            if item.state == WAITING:
                item.state, item.note = QUEUED, None
            self._fetch(item)
        finally:
            held.release()

    def _fetch(self, item: FileProgress) -> None:
        job = self.job
        final = final_path(job.local_dir, item.path)
        if final.is_file() and verify.is_verified(job.local_dir, item.path, item.size, item.sha256):
            item.done_bytes = item.size
            item.state = DONE
            partial.discard(job.local_dir, item.path)
            self.note(force=True)
            return
        if final.is_file() and final.stat().st_size == item.size:
            self._check(item, final, moved=True)  # downloaded before (by us or `hf download`)
            return
        item.state = RUNNING
        self.note(force=True)
        try:
            source = fetch.probe(job.repo, item.path, job.commit or job.revision)
            if source.way == fetch.XET:
                got = self._fetch_xet(item, source)
            else:
                got = self._fetch_http(item, source)
        except Cancelled:
            item.state = CANCELLED
            item.speed_bps = 0.0
            self.note(force=True)
            return
        except Exception as exc:  # network, HTTP, disk: the partial file stays for resume
            from sparktop.downloads.hub import describe_hub_error

            item.state = FAILED
            item.error = describe_hub_error(exc, job.repo, job.revision)
            if item.via == fetch.XET:
                item.error = f"Xet transfer: {item.error} ({XET_ADVICE})"
            item.speed_bps = 0.0
            self.note(force=True)
            return
        item.speed_bps = 0.0
        if isinstance(got, Path):  # written by Xet: read once for its sha256
            self._check(item, got, moved=False)
            partial.discard(job.local_dir, item.path)  # an HTTP partial of it is of no use
        else:
            self._verdict(item, *got)

    def _fetch_http(self, item: FileProgress, source: fetch.Source) -> tuple[Path, int, str]:
        """Into the partial file, resumed when it holds this version's bytes (hashed once
        first), discarded (and said so) before any byte is fetched when it does not.
        Returns the partial file, its size and sha256."""
        job = self.job
        item.via = fetch.HTTP
        stale = partial.stale_reason(job.local_dir, item.path, item.version)
        if stale is not None:
            partial.discard(job.local_dir, item.path)
            item.note = f"partial file discarded: {stale}"
            self.note(force=True)
        part = partial_path(job.local_dir, item.path)
        part.parent.mkdir(parents=True, exist_ok=True)
        if not part.exists():
            partial.write_version(job.local_dir, item.path, item.version)
        digest = verify.Digest()
        if part.exists():
            digest.feed_file(part)  # once: the rest is hashed as it arrives
        item.resumed_from = item.done_bytes = digest.size
        item._mark = (time.monotonic(), digest.size)  # speed counts from here, not from 0
        self.note(force=True)
        fetch.fetch_http(source.url, part, digest, size=item.size, cancel=job.cancel,
                         progress=self._progress(item))  # fmt: skip
        return part, digest.size, digest.hexdigest()

    def _fetch_xet(self, item: FileProgress, source: fetch.Source) -> Path:
        """By huggingface_hub's Xet transfer into a file of its own (the bytes never pass
        through sparktop); returns that file."""
        job = self.job
        item.via = fetch.XET
        item.resumed_from = item.done_bytes = 0
        target = partial.xet_path(job.local_dir, item.path)
        try:
            fetch.fetch_xet(source, target, size=item.size, name=item.path,
                            bar=self._bar_class(item))  # fmt: skip
            if job.cancel.is_set():
                raise Cancelled()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def _check(self, item: FileProgress, path: Path, moved: bool) -> None:
        """Verify a file by reading it (found complete on disk, or written by Xet)."""
        item.state = VERIFYING
        self.note(force=True)
        size = path.stat().st_size
        sha = verify.sha256_of(path) if item.sha256 and size == item.size else None
        self._verdict(item, path, size, sha, moved=moved)

    def _verdict(
        self, item: FileProgress, path: Path, size: int, sha256: str | None, moved: bool = False
    ) -> None:
        """The file's end: corrupt (its bytes set aside, out of the model's tree) or done
        (moved into place, stamped verified)."""
        job = self.job
        item.state = VERIFYING
        self.note(force=True)
        try:  # the bytes hashed on the way must all be in the file (one stat, no re-read)
            on_disk = path.stat().st_size
        except OSError:
            on_disk = -1
        if on_disk != size:
            problem = (f"{on_disk} bytes on disk after {size} were received and checked: the "
                       "file changed while it downloaded")  # fmt: skip
        else:
            problem = verify.verdict(size, sha256, item.size, item.sha256)
        final = final_path(job.local_dir, item.path)
        if problem is not None:
            item.state = CORRUPT
            item.error = problem
            bad = bad_path(job.local_dir, item.path)
            bad.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, bad)  # out of the model's tree: `serve` never sees it
            partial.discard(job.local_dir, item.path)
            self.note(force=True)
            return
        if not moved:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
        partial.discard(job.local_dir, item.path)
        verify.write_stamp(job.local_dir, item.path, item.sha256)
        item.done_bytes = item.size
        item.state = DONE
        self.note(force=True)
