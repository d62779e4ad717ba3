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
            self.progress.update(task, completed=item.done_bytes, visible=item.moving)
        self.progress.update(self.tasks["*"], completed=event.done_bytes)


def cmd_download(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import downloads as action

    local_dir = args.local_dir or action.default_local_dir(args.repo, args.include)
    try:
        found = action.plan(
            args.repo, args.include, revision=args.revision, local_dir=local_dir.expanduser()
        )
    except ActionError as exc:
        print("\n".join(exc.detail), end="\n" if exc.detail else "")
        print(f"sparktop: error: {exc}", file=sys.stderr)
        return exc.code
    print("\n".join(action.confirm_lines(found)), flush=True)
    with ProgressView(tty=sys.stdout.isatty()) as view:
        outcome = action.Downloads().run(
            found, args.include, parallel=max(1, args.parallel), report=view.show
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
