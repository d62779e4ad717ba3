"""Several downloads at once or queued, remembered, resumable: the one job runner behind both
faces (`sparktop.actions.downloads`: the TUI starts jobs, the CLI starts one and waits).

Jobs run on threads (a few at a time, the rest queued); every change is saved to the
download records, so a download cut short by sparktop's exit shows as *interrupted* next
time and `resume_interrupted()` picks it up from the bytes on disk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sparktop.downloads.hub import DownloadError, DownloadPlan, plan_download
from sparktop.downloads.records import INTERRUPTED, DownloadStore
from sparktop.downloads.transfer import (
    CANCELLED,
    ENDED,
    QUEUED,
    RUNNING,
    DownloadJob,
    Listener,
    Transfer,
    job_from_plan,
    one_line,
    settle,
)
from sparktop.downloads.watch import ExternalDownload, ExternalWatcher
from sparktop.logs import LOGGER
from sparktop.snapshot import DownloadInfo, ExternalDownloadInfo

Changed = Callable[[], None]
DEFAULT_PARALLEL_FILES = 8
"""Files of one download fetched at once (as `hf download`); config `downloads.parallel`."""


class DownloadManager:
    def __init__(
        self,
        store: DownloadStore | None = None,
        *,
        parallel_jobs: int = 2,
        parallel_files: int = DEFAULT_PARALLEL_FILES,
        on_change: Changed | None = None,
        local_dirs: Callable[[], list[tuple[Path, str | None]]] = lambda: [],
    ) -> None:
        self.store = store or DownloadStore()
        self.parallel_jobs = parallel_jobs
        self.parallel_files = parallel_files
        self.on_change = on_change or (lambda: None)
        self.jobs: list[DownloadJob] = []
        self.watcher = ExternalWatcher(local_dirs=local_dirs)
        self.external: list[ExternalDownload] = []
        self._history: list[DownloadInfo] = []
        """The download records as last read (by `scan_external`, off the UI thread)."""
        self._lock = threading.Lock()
        self._saved: dict[str, float] = {}
        self._watchers: dict[str, Listener] = {}
        """Per-job listeners (a blocking caller's progress), called after `on_change`."""

    # -- starting ------------------------------------------------------------------------

    def plan(self, repo: str, include: tuple[str, ...], local_dir: Path, revision: str = "main"):
        """Blocking: ask the Hub (raises DownloadError with one line)."""
        return plan_download(repo, include, revision=revision, local_dir=local_dir)

    def start(
        self,
        plan: DownloadPlan,
        include: tuple[str, ...] = (),
        *,
        parallel: int | None = None,
        listener: Listener | None = None,
        wait: bool = True,
    ) -> DownloadJob:
        """Queue the job (it starts when a slot is free); `listener` hears its every change.
        With `wait` False a file another download holds fails at once instead of waiting."""
        job = job_from_plan(plan, include)
        job.parallel, job.wait = parallel, wait
        self._supersede(job)
        if listener is not None:
            self._watchers[job.id] = listener
        with self._lock:
            self.jobs.append(job)
        self._save(job, force=True)
        self._pump()
        return job

    def _supersede(self, job: DownloadJob) -> None:
        """A new run of a download cut short takes over its record (the newest of them; any
        older ones are dropped): it no longer reads *interrupted*, nor is offered again."""
        with contextlib.suppress(OSError):
            live = {j.id for j in self.jobs}
            ids = [i for i in self.store.interrupted_like(job.to_json()) if i not in live]
            if ids:
                job.id = ids[-1]
                self.store.remove(set(ids[:-1]))

    def resume_interrupted(self) -> list[str]:
        """Re-plan and restart downloads that were cut short; returns problems (one line each)."""
        problems = []
        mine = {j.id for j in self.jobs}
        for record in self.store.load():
            if record.get("state") != INTERRUPTED or record.get("id") in mine:
                continue
            try:
                plan = self.plan(
                    record["repo"],
                    tuple(record.get("include") or ()),
                    Path(record["local_dir"]),
                    record.get("revision") or "main",
                )
            except (DownloadError, KeyError) as exc:
                problems.append(f"cannot resume {record.get('repo')}: {exc}")
                continue
            job = job_from_plan(plan, tuple(record.get("include") or ()))
            job.id = record["id"]
            with self._lock:
                self.jobs.append(job)
            self._save(job, force=True)
        self._pump()
        return problems

    def cancel(self, job_id: str) -> bool:
        for job in self.jobs:
            if job.id == job_id and job.state not in ENDED:
                job.cancel.set()
                if job.state == QUEUED:
                    for item in job.files:
                        item.state = CANCELLED
                    settle(job)
                    self._finish(job)
                return True
        return False

    def abandon(self, job: DownloadJob) -> None:
        """Stop waiting for a cancelled job that is slow to wind down (a second Ctrl-C): it is
        recorded *cancelled* now; its threads die with the process, the partial files stay."""
        job.cancel.set()
        if job.state not in ENDED:
            for item in job.files:
                if item.state not in ENDED:
                    item.state, item.speed_bps = CANCELLED, 0.0
            settle(job)
            self._finish(job)

    # -- running -------------------------------------------------------------------------

    def running(self) -> list[DownloadJob]:
        return [j for j in self.jobs if j.state not in ENDED and j.state != QUEUED]

    def _pump(self) -> None:
        with self._lock:
            slots = self.parallel_jobs - len(self.running())
            starting = [j for j in self.jobs if j.state == QUEUED][: max(0, slots)]
            for job in starting:
                job.state = RUNNING
        for job in starting:
            threading.Thread(target=self._run, args=(job,), daemon=True,
                             name=f"sparktop-dl-{job.id}").start()  # fmt: skip

    def _run(self, job: DownloadJob) -> None:
        try:
            Transfer(job, self._changed, parallel=job.parallel or self.parallel_files).run()
        except Exception as exc:  # a bug must not leave a job "running" forever
            LOGGER.exception("download %s of %s", job.id, job.repo)
            if job.state not in ENDED:
                settle(job, f"download failed: {one_line(exc)}")
        finally:
            if not job.ended.is_set():  # `abandon` may have ended it already
                self._finish(job)
            self._pump()

    def _changed(self, job: DownloadJob) -> None:
        self._save(job)
        self._tell(job)

    def _finish(self, job: DownloadJob) -> None:
        """The job has ended: its record written, views told, then waiters woken (so a waiter
        has heard the end before it returns)."""
        self._save(job, force=True)
        self._tell(job)
        self._watchers.pop(job.id, None)
        job.ended.set()

    def _tell(self, job: DownloadJob) -> None:
        """A view that breaks (a closed pipe, a bug) must not fail the download it shows."""
        watcher = self._watchers.get(job.id)
        try:
            self.on_change()
            if watcher is not None:
                watcher(job)
        except Exception:
            LOGGER.exception("download %s: a progress view failed", job.id)

    def _save(self, job: DownloadJob, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved.get(job.id, 0.0) < 1.0:
            return
        self._saved[job.id] = now
        # a full disk must not stop the download itself; the panel still shows it
        with contextlib.suppress(OSError):
            self.store.save(job.to_json())

    # -- views ---------------------------------------------------------------------------

    def scan_external(self) -> list[ExternalDownload]:
        """Blocking file system reads (call it off the UI thread): downloads started elsewhere,
        and the records other sparktop processes wrote."""
        self.external = self.watcher.scan()
        self._history = self.store.infos()
        return self.external

    def rows(self) -> list[DownloadInfo | ExternalDownloadInfo]:
        """What the panel lists: live jobs, then history, then downloads started elsewhere.

        No I/O here: the panel redraws this several times a second during a download.
        """
        live = {j.id: j.info() for j in self.jobs}
        out: list[DownloadInfo | ExternalDownloadInfo] = list(live.values())
        out += [record for record in self._history if record.id not in live]
        out.sort(key=lambda r: r.created_at or 0)  # type: ignore[union-attr]
        return out + [e.info() for e in self.external]
