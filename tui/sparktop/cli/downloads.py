"""`sparktop download`: the face of `sparktop.actions.downloads` (arguments and printing only):
the plan's lines, progress (rich bars on a TTY, one plain line a second otherwise), the end."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparktop.actions.events import Event
    from sparktop.config import Config
    from sparktop.downloads.hub import DownloadPlan


def add_parser(sub: argparse._SubParsersAction) -> None:
    download = sub.add_parser(
        "download", help="download a model from Hugging Face (resumes, verifies sha256)"
    )
    download.add_argument(
        "repo", metavar="REPO|NAME",
        help="a Hugging Face repo (e.g. unsloth/Qwen3-Coder-Next-GGUF), or a catalog model: "
        "its repo and files into its local_dir",
    )  # fmt: skip
    download.add_argument(
        "--include", action="append", default=[], metavar="PATTERN",
        help="only files matching (repeatable), e.g. 'UD-Q4_K_XL/*'",
    )  # fmt: skip
    download.add_argument("--revision", default="main")
    download.add_argument("--local-dir", type=Path, metavar="DIR",
                          help="where the files go (default: the catalog's local_dir for this "
                          "repo, else ~/models/<name>)")  # fmt: skip
    download.add_argument(
        "--parallel",
        type=int,
        default=None,
        metavar="N",
        help="files at once, 1-64 (default 8, or downloads.parallel in config)",
    )
    download.add_argument(
        "--no-wait", action="store_true",
        help="a file another download is fetching into the same folder fails at once "
        "instead of waiting for it",
    )  # fmt: skip


class ProgressView:
    """Draws `DownloadProgress` events: rich bars (total, and each file while it moves) on a
    TTY; elsewhere the event's line at most once a second, and the last one at the end."""

    def __init__(self, tty: bool) -> None:
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.last: Event | None = None
        self.printed_at = 0.0
        if tty:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )  # fmt: skip

            self.progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(),
            )  # fmt: skip

    def __enter__(self) -> ProgressView:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        elif self.last is not None:
            print(self.last.message, flush=True)

    def show(self, event: Event) -> None:
        from sparktop.actions.downloads import DownloadProgress

        if not isinstance(event, DownloadProgress):  # a step (cancelling): always shown
            if self.progress is not None:
                self.progress.console.print(event.message, markup=False, highlight=False)
            else:
                print(event.message, file=sys.stderr, flush=True)
            return
        self.last = event
        if self.progress is None:
            now = time.monotonic()
            if now - self.printed_at >= 1.0:
                self.printed_at = now
                print(event.message, flush=True)
            return
        if not self.tasks:
            self.tasks["*"] = self.progress.add_task("total", total=event.total_bytes)
            for item in event.files:
                self.tasks[item.path] = self.progress.add_task(
                    item.path, total=item.size, visible=False
                )
        for item in event.files:
            task = self.tasks[item.path]
            name = f"{item.path} ({item.note})" if item.waiting and item.note else item.path
            self.progress.update(task, completed=item.done_bytes, description=name,
                                 visible=item.moving or item.waiting)  # fmt: skip
        self.progress.update(self.tasks["*"], completed=event.done_bytes)


def _plan(args: argparse.Namespace) -> tuple[DownloadPlan, list[str]]:
    """What to fetch: a catalog model's repo and files into its local_dir (`--include` and
    `--local-dir` override them), else the repo named. Raises ActionError."""
    from sparktop.actions import downloads as action
    from sparktop.actions.errors import BAD_INPUT, ActionError
    from sparktop.catalog.loader import load_catalog

    catalog = load_catalog()
    entry = None if "/" in args.repo else catalog.get(args.repo)
    if entry is None:
        repo, include, local_dir = args.repo, args.include, args.local_dir
    elif not args.include and args.local_dir is None:  # the entry as it is: as the TUI's `d`
        found = action.plan_entry(entry, revision=args.revision, report=_step)
        return found, list(entry.include)
    elif not entry.repo:
        raise ActionError(action.entry_refusal(entry) or "", code=BAD_INPUT)
    else:
        repo, include = entry.repo, args.include or list(entry.include)
        local_dir = args.local_dir or entry.local_dir
    local_dir = (local_dir or action.default_local_dir(repo, include, catalog)).expanduser()
    found = action.plan(repo, include, revision=args.revision, local_dir=local_dir, report=_step)
    return found, include


def _step(event: Event) -> None:
    """A step before the download (what it waits on), printed as it happens (stdout, with the
    plan's lines: stderr stays the one-line error)."""
    print(event.message, flush=True)


def cmd_download(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import downloads as action

    try:
        parallel = action.files_at_once(
            args.parallel if args.parallel is not None else config.downloads.parallel
        )
        found, include = _plan(args)
    except ActionError as exc:
        print("\n".join(exc.detail), end="\n" if exc.detail else "")
        print(f"sparktop: error: {exc}", file=sys.stderr)
        return exc.code
    print("\n".join(action.confirm_lines(found)), flush=True)
    with ProgressView(tty=sys.stdout.isatty()) as view:
        outcome = action.Downloads().run(
            found, include, parallel=parallel, report=view.show, wait=not args.no_wait
        )
    if len(outcome.problems) > 1:  # one is named by the message itself
        for item in outcome.problems:
            reason = f": {item.error}" if item.error else ""
            print(f"  {item.state:>9}  {item.path}{reason}", file=sys.stderr)
    if outcome.ok:
        print(outcome.message)
    else:
        prefix = "" if outcome.cancelled else "sparktop: error: "
        print(f"{prefix}{outcome.message}", file=sys.stderr)
    return outcome.exit_code
