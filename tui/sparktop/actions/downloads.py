"""Download and cancel: one flow for both faces.

`plan` asks the Hub and checks the disk (an `ActionError` says why not), `confirm_lines` is
what either face shows before starting, and `Downloads` runs jobs on the one job runner
(`sparktop.downloads.manager`): the TUI `start`s them and redraws on `on_change`; the CLI
`run`s one and waits. Every way a file can fail ends as that file's state with one line, the
job ends done, corrupt, failed or cancelled, and downloads.json records the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sparktop.actions.errors import BAD_INPUT, FAILED, INTERRUPTED, ActionError
from sparktop.actions.events import Event, Report, quiet
from sparktop.downloads.hub import DownloadError, DownloadPlan, endpoint_url, plan_download
from sparktop.downloads.manager import DEFAULT_PARALLEL_FILES, Changed, DownloadManager
from sparktop.downloads.partial import META_DIR
from sparktop.downloads.records import DownloadStore
from sparktop.downloads.transfer import (
    CANCELLED,
    CORRUPT,
    DONE,
    RUNNING,
    VERIFYING,
    WAITING,
    DownloadJob,
)
from sparktop.snapshot import DownloadInfo, ExternalDownloadInfo
from sparktop.units import fmt_bytes, fmt_duration

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry
    from sparktop.downloads.watch import ExternalDownload

ACTION = "download"
SHOWN_FILES = 12
"""Files listed by name before the confirmation; the rest are counted."""
CANCELLING = "cancelling: the partial files stay for resume"
"""What a face says when `cancel` was accepted and the job is winding down."""
CANCELLED_MESSAGE = "cancelled: partial files kept; run the same command to resume"
"""How a cancelled download ends, in both faces (the CLI exits 130)."""


# -- planning -----------------------------------------------------------------------------


def default_local_dir(
    repo: str, include: Iterable[str] = (), catalog: Iterable[ModelEntry] | None = None
) -> Path:
    """The catalog's local_dir for this repo and these files, else ~/models/<name>."""
    if catalog is None:
        from sparktop.catalog.loader import load_catalog

        catalog = load_catalog()
    include = set(include)
    for entry in catalog:
        same_files = not include or include == set(entry.include)
        if entry.repo == repo and entry.local_dir is not None and same_files:
            return entry.local_dir
    return Path.home() / "models" / repo.split("/")[-1]


def plan(
    repo: str,
    include: Iterable[str] = (),
    *,
    revision: str = "main",
    local_dir: Path,
    report: Report = quiet,
) -> DownloadPlan:
    """Blocking (asks the Hub, each question bounded by HF_HUB_ETAG_TIMEOUT): what would be
    fetched; `report` hears what it waits on first. Raises `ActionError` with the Hub's answer
    (one that does not come names the endpoint) or the space problem in numbers (its `detail`
    then is the plan's lines)."""
    report(Event(ACTION, "asking", f"asking the Hub at {endpoint_url()} for the files of "
                 f"{repo}@{revision} …"))  # fmt: skip
    try:
        found = plan_download(repo, tuple(include), revision=revision, local_dir=local_dir)
    except DownloadError as exc:
        raise ActionError(str(exc)) from None
    problem = found.space_problem()
    if problem:
        raise ActionError(problem, confirm_lines(found))
    return found


def entry_refusal(entry: ModelEntry) -> str | None:
    """Why a catalog entry cannot be downloaded (no repo, or nowhere to put it); else None."""
    if not entry.repo:
        where = f" (its files are read from {entry.local_dir})" if entry.local_dir else ""
        return f"{entry.name} has no Hugging Face repo to download from{where}"
    if entry.local_dir is None:
        return f"{entry.name} has no local_dir in the catalog: set one to say where it goes"
    return None


def plan_entry(
    entry: ModelEntry, *, revision: str = "main", report: Report = quiet
) -> DownloadPlan:
    """`plan` for a catalog entry (the TUI's `d`, `sparktop download NAME`), which must name
    a repo and a local_dir."""
    refusal = entry_refusal(entry)
    if refusal:
        raise ActionError(refusal, code=BAD_INPUT)
    assert entry.repo is not None and entry.local_dir is not None
    return plan(entry.repo, entry.include, revision=revision, local_dir=entry.local_dir,
                report=report)  # fmt: skip


def confirm_lines(found: DownloadPlan) -> list[str]:
    """What is about to happen, as both faces show it before starting: source, destination,
    files with sizes, what is already here, free space."""
    count = len(found.files)
    lines = [
        f"{found.repo}@{found.revision} ({found.commit[:12]}): "
        f"{count} file{'' if count == 1 else 's'}, {fmt_bytes(found.total_bytes)}",
        f"into {found.local_dir}",
    ]
    lines += [f"  {fmt_bytes(f.size):>10}  {f.path}" for f in found.files[:SHOWN_FILES]]
    if count > SHOWN_FILES:
        lines.append(f"  … and {count - SHOWN_FILES} more files")
    lines += [line for line in [already_here(found)] if line]
    lines.append(f"{fmt_bytes(found.free_bytes)} free on that disk.")
    return lines


def already_here(found: DownloadPlan) -> str | None:
    """What of the download is on disk already, in one line; None when nothing is."""
    if not found.present_bytes:
        return None
    if found.all_verified:
        return "already complete here and verified (size and sha256): nothing to fetch."
    if found.complete:
        return "already complete here: checking each file's sha256 (nothing to fetch)."
    return f"{fmt_bytes(found.present_bytes)} already here: resuming."


PARALLEL_FILES = (1, 64)
"""The bounds of files at once (`--parallel`, config downloads.parallel)."""


def files_at_once(parallel: int) -> int:
    """`parallel` when within PARALLEL_FILES, else an `ActionError` (bad input) saying so."""
    low, high = PARALLEL_FILES
    if not low <= parallel <= high:
        raise ActionError(
            f"--parallel must be {low} to {high} files at once, got {parallel}", code=BAD_INPUT
        )
    return parallel


# -- results and progress -----------------------------------------------------------------


@dataclass(frozen=True)
class FileOutcome:
    path: str
    size: int
    done_bytes: int
    state: str
    error: str | None = None
    """One line when the file is corrupt or failed."""
    note: str | None = None
    """What to show beside the file now (waiting for another download of it, a partial
    file of another version discarded)."""

    @property
    def moving(self) -> bool:
        """Bytes are arriving or being checked right now."""
        return self.state in (RUNNING, VERIFYING)

    @property
    def waiting(self) -> bool:
        """Another download (here or in another process) holds this file: it waits."""
        return self.state == WAITING


@dataclass(frozen=True)
class DownloadProgress(Event):
    """A download's `Event`: `message` is the one-line progress, `fraction` done/total; the
    byte counts and files let a face draw bars (the CLI's rich bars, one per file)."""

    done_bytes: int = 0
    total_bytes: int = 0
    speed_bps: float = 0.0
    eta_s: float | None = None
    files: tuple[FileOutcome, ...] = ()


@dataclass(frozen=True)
class DownloadOutcome:
    """How a download ended (or stands), as both faces show it and downloads.json records it."""

    job_id: str
    repo: str
    revision: str
    commit: str | None
    local_dir: Path
    state: str
    """done, corrupt, failed or cancelled once ended."""
    files: tuple[FileOutcome, ...]
    done_bytes: int
    total_bytes: int
    error: str | None
    message: str
    """The one line both faces show."""

    @property
    def ok(self) -> bool:
        return self.state == DONE

    @property
    def cancelled(self) -> bool:
        return self.state == CANCELLED

    @property
    def exit_code(self) -> int:
        """The CLI's exit status: 0 done, 130 cancelled (as after Ctrl-C), 1 otherwise."""
        return 0 if self.ok else INTERRUPTED if self.cancelled else FAILED

    @property
    def problems(self) -> list[FileOutcome]:
        """The files that did not end done (with their one-line reasons)."""
        return [f for f in self.files if f.state != DONE]

    @classmethod
    def of(cls, job: DownloadJob) -> DownloadOutcome:
        return cls(
            job_id=job.id,
            repo=job.repo,
            revision=job.revision,
            commit=job.commit,
            local_dir=job.local_dir,
            state=job.state,
            files=_files(job),
            done_bytes=job.done_bytes,
            total_bytes=job.total_bytes,
            error=job.error,
            message=outcome_message(job),
        )


def _files(job: DownloadJob) -> tuple[FileOutcome, ...]:
    return tuple(
        FileOutcome(f.path, f.size, f.done_bytes, f.state, f.error, f.note) for f in job.files
    )


def outcome_message(job: DownloadJob) -> str:
    """The one line saying how a job ended (or how far it is)."""
    if job.state == DONE:
        count = len(job.files)
        files = f"{count} file{'' if count == 1 else 's'}"
        return f"done: {files} verified (size and sha256) in {job.local_dir}"
    if job.state == CANCELLED:
        return CANCELLED_MESSAGE
    bad = [f for f in job.files if f.state == job.state]
    if not (job.error and bad):
        return f"{job.state}: {progress_line(job)}"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    kept = f"; bad bytes kept in {job.local_dir / META_DIR}" if job.state == CORRUPT else ""
    return f"{job.state}: {job.error}{more}{kept}"


def progress_line(job: DownloadJob) -> str:
    """Percent, bytes, speed and ETA on one line (the CLI prints it once a second off a TTY)."""
    eta = job.eta_s
    done, total = fmt_bytes(job.done_bytes), fmt_bytes(job.total_bytes)
    line = (
        f"{job.repo}: {job.percent:5.1f}% {done} / {total}"
        f"  {fmt_bytes(int(job.speed_bps))}/s  ETA {fmt_duration(eta) if eta is not None else '–'}"
    )
    waiting = sum(1 for f in job.files if f.state == WAITING)
    if waiting:
        files = "1 file" if waiting == 1 else f"{waiting} files"
        line += f"  ({files} waiting for another download)"
    return line


def progress_event(job: DownloadJob, started: float) -> DownloadProgress:
    total = job.total_bytes
    return DownloadProgress(
        action=ACTION,
        stage=job.state,
        message=progress_line(job),
        elapsed_s=time.monotonic() - started,
        fraction=job.done_bytes / total if total else None,
        done_bytes=job.done_bytes,
        total_bytes=total,
        speed_bps=job.speed_bps,
        eta_s=job.eta_s,
        files=_files(job),
    )


# -- running ------------------------------------------------------------------------------


class Downloads:
    """The downloads of this process: the TUI keeps one for its panel, the CLI makes one per
    run. `on_change` is called (from download threads) whenever a job or its record moves."""

    def __init__(
        self,
        store: DownloadStore | None = None,
        *,
        on_change: Changed | None = None,
        local_dirs: Callable[[], list[tuple[Path, str | None]]] = lambda: [],
        parallel_jobs: int = 2,
        parallel_files: int = DEFAULT_PARALLEL_FILES,
    ) -> None:
        self.manager = DownloadManager(
            store,
            parallel_jobs=parallel_jobs,
            parallel_files=parallel_files,
            on_change=on_change,
            local_dirs=local_dirs,
        )

    @property
    def jobs(self) -> list[DownloadJob]:
        """This process's jobs, oldest first."""
        return self.manager.jobs

    def start(
        self,
        found: DownloadPlan,
        include: Iterable[str] = (),
        *,
        parallel: int | None = None,
        wait: bool = True,
    ) -> DownloadJob:
        """Non-blocking: queue the download; its end sets `job.ended` (`outcome()` then).
        A file another download holds waits for it (state *waiting*), or with `wait` False
        fails at once saying so."""
        return self.manager.start(found, tuple(include), parallel=parallel, wait=wait)

    def run(
        self,
        found: DownloadPlan,
        include: Iterable[str] = (),
        *,
        parallel: int | None = None,
        report: Report = quiet,
        cancel: threading.Event | None = None,
        wait: bool = True,
    ) -> DownloadOutcome:
        """Blocking: the same job as `start`, waited for, its progress sent to `report`.

        Ctrl-C (KeyboardInterrupt here) or `cancel` being set cancels the job and waits for
        it to end, so the record says *cancelled* and the partial files stay for resume; a
        second Ctrl-C stops waiting and records it *cancelled* at once. A file's note (it
        waits for another download of it, a stale partial file was discarded) is reported
        once as a step of its own.
        """
        started = time.monotonic()
        lock = threading.Lock()  # file threads report at once; a face draws one at a time
        told: dict[str, str | None] = {}

        def heard(job: DownloadJob) -> None:
            with lock:
                for item in job.files:
                    if item.note and told.get(item.path) != item.note:
                        report(Event(ACTION, item.state, f"{item.path}: {item.note}"))
                    told[item.path] = item.note
                report(progress_event(job, started))

        job = self.manager.start(
            found, tuple(include), parallel=parallel, listener=heard, wait=wait
        )
        self._wait(job, cancel, report)  # the end was reported before `ended` was set
        return DownloadOutcome.of(job)

    def _wait(self, job: DownloadJob, cancel: threading.Event | None, report: Report) -> None:
        """Wait on the runner's `ended` event (not a thread join, which an interrupt can cut
        short while the thread still runs)."""
        while True:
            try:
                if job.ended.wait(0.2):
                    return
                if cancel is not None and cancel.is_set() and not job.cancel.is_set():
                    self.cancel(job.id)
            except KeyboardInterrupt:
                if job.cancel.is_set():
                    self.manager.abandon(job)
                    return
                self.cancel(job.id)
                # the client notices between chunks: seconds on a slow link
                report(Event(ACTION, "cancelling", f"{CANCELLING} (Ctrl-C again: stop now)"))

    def cancel(self, job_id: str) -> bool:
        """Ask a queued or running job to stop (partial files stay); False if none such."""
        return self.manager.cancel(job_id)

    def outcome(self, job_id: str) -> DownloadOutcome | None:
        """How a job of this process stands or ended; None if it is not one of ours."""
        job = next((j for j in self.jobs if j.id == job_id), None)
        return DownloadOutcome.of(job) if job is not None else None

    def resume_interrupted(self) -> list[str]:
        """Blocking (asks the Hub): restart downloads cut short by an exit; returns what could
        not be resumed, one line each."""
        return self.manager.resume_interrupted()

    def scan_external(self) -> list[ExternalDownload]:
        """Blocking file reads (off the UI thread): downloads started elsewhere, and the
        records other processes wrote, for the next `rows()`."""
        return self.manager.scan_external()

    @property
    def external(self) -> list[ExternalDownload]:
        """Downloads started elsewhere, as the last `scan_external` found them."""
        return self.manager.external

    def rows(self) -> list[DownloadInfo | ExternalDownloadInfo]:
        """The panel's rows: live jobs, history, downloads started elsewhere. No I/O."""
        return self.manager.rows()
