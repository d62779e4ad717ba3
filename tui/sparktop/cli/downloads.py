"""`sparktop download`: plan, space check, progress (rich on a TTY, plain lines otherwise)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sparktop.units import fmt_bytes, fmt_duration

if TYPE_CHECKING:
    from sparktop.config import Config
    from sparktop.downloads.transfer import DownloadJob


def add_parser(sub: argparse._SubParsersAction) -> None:
    download = sub.add_parser(
        "download", help="download a model from Hugging Face (resumes, verifies sha256)"
    )
    download.add_argument("repo", metavar="REPO", help="e.g. unsloth/Qwen3-Coder-Next-GGUF")
    download.add_argument(
        "--include", action="append", default=[], metavar="PATTERN",
        help="only files matching (repeatable), e.g. 'UD-Q4_K_XL/*'",
    )  # fmt: skip
    download.add_argument("--revision", default="main")
    download.add_argument("--local-dir", type=Path, metavar="DIR",
                          help="where the files go (default: the catalog's local_dir for this "
                          "repo, else ~/models/<name>)")  # fmt: skip
    download.add_argument("--parallel", type=int, default=4, help="files at once (default 4)")


def default_local_dir(repo: str, include: list[str]) -> Path:
    from sparktop.catalog.loader import load_catalog

    for entry in load_catalog():
        same_files = not include or set(include) == set(entry.include)
        if entry.repo == repo and entry.local_dir is not None and same_files:
            return entry.local_dir
    return Path.home() / "models" / repo.split("/")[-1]


def _line(job: DownloadJob) -> str:
    eta = job.eta_s
    done, total = fmt_bytes(job.done_bytes), fmt_bytes(job.total_bytes)
    return (
        f"{job.repo}: {job.percent:5.1f}% {done} / {total}"
        f"  {fmt_bytes(int(job.speed_bps))}/s  ETA {fmt_duration(eta) if eta is not None else '–'}"
    )


def cmd_download(config: Config, args: argparse.Namespace) -> int:
    from sparktop.downloads.hub import DownloadError, plan_download
    from sparktop.downloads.records import DownloadStore
    from sparktop.downloads.transfer import DONE, Transfer, job_from_plan

    local_dir = (args.local_dir or default_local_dir(args.repo, args.include)).expanduser()
    try:
        plan = plan_download(args.repo, args.include, revision=args.revision, local_dir=local_dir)
    except DownloadError as exc:
        print(f"sparktop: error: {exc}", file=sys.stderr)
        return 1
    print(f"{plan.repo}@{plan.revision} ({plan.commit[:12]}) → {plan.local_dir}")
    for item in plan.files[:20]:
        print(f"  {fmt_bytes(item.size):>10}  {item.path}")
    if len(plan.files) > 20:
        print(f"  … and {len(plan.files) - 20} more files")
    resume = f", {fmt_bytes(plan.present_bytes)} already here" if plan.present_bytes else ""
    print(f"  {len(plan.files)} files, {fmt_bytes(plan.total_bytes)}{resume}")
    problem = plan.space_problem()
    if problem:
        print(f"sparktop: error: {problem}", file=sys.stderr)
        return 1
    job = job_from_plan(plan, tuple(args.include))
    store = DownloadStore()
    saved = {"at": 0.0}

    def persist(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - saved["at"] >= 1.0:
            saved["at"] = now
            store.save(job.to_json())

    tty = sys.stdout.isatty()
    progress = None
    tasks: dict[str, object] = {}
    last_line = {"at": 0.0}
    if tty:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )  # fmt: skip

        progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
        )  # fmt: skip
        tasks["*"] = progress.add_task("total", total=job.total_bytes)
        for item in job.files:
            tasks[item.path] = progress.add_task(item.path, total=item.size, visible=False)

    def listener(current: DownloadJob) -> None:
        persist()
        if progress is not None:
            for item in current.files:
                visible = item.state in ("downloading", "verifying")
                progress.update(tasks[item.path], completed=item.done_bytes, visible=visible)
            progress.update(tasks["*"], completed=current.done_bytes)
        else:
            now = time.monotonic()
            if now - last_line["at"] >= 1.0:
                last_line["at"] = now
                print(_line(current), flush=True)

    transfer = Transfer(job, listener, parallel=max(1, args.parallel))
    persist(force=True)
    runner = threading.Thread(target=transfer.run, name="sparktop-download", daemon=True)
    try:
        if progress is not None:
            progress.start()
        runner.start()
        while runner.is_alive():
            runner.join(0.2)
    except KeyboardInterrupt:
        job.cancel.set()
        runner.join()
    finally:
        if progress is not None:
            progress.stop()
        persist(force=True)
    if not tty:
        print(_line(job), flush=True)
    for item in job.files:
        if item.state != DONE:
            detail = f": {item.error}" if item.error else ""
            print(f"  {item.state:>9}  {item.path}{detail}", file=sys.stderr)
    if job.state == DONE:
        print(f"done: {len(job.files)} files verified (size and sha256) in {plan.local_dir}")
        return 0
    if job.state == "cancelled":
        print("cancelled: partial files kept; run the same command to resume", file=sys.stderr)
        return 130
    print(f"sparktop: error: download {job.state}: {job.error}", file=sys.stderr)
    return 1
