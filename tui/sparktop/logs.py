"""sparktop's own log: `<state>/sparktop.log`, rotated at 1 MiB with 3 old files kept.

INFO and up by default, DEBUG with `--debug`. Warnings and errors are also kept in memory
(`recent()`), which the full-screen view's warnings key shows. Logging never disturbs the
screen: a log that cannot be written (disk full, read-only state dir) is counted, not printed.
Tokens are never logged: callers pass the names of token variables, not their values.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sparktop import paths

LOGGER = logging.getLogger("sparktop")
LOG_NAME = "sparktop.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3
KEEP_RECENT = 200
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Entry:
    """One warning or error, as the warnings screen lists it."""

    time: float
    level: str
    message: str

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return f"{stamp}  {self.level:<7}  {self.message}"


class RecentHandler(logging.Handler):
    """Keeps the last warnings and errors in memory."""

    def __init__(self, keep: int = KEEP_RECENT) -> None:
        super().__init__(logging.WARNING)
        self.entries: deque[Entry] = deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller
            message = str(record.msg)
        self.entries.append(Entry(record.created, record.levelname, message))


class QuietRotatingHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that counts failed writes instead of printing tracebacks to
    stderr (which, under a full-screen app, would land in the middle of the screen)."""

    dropped = 0

    def handleError(self, record: logging.LogRecord) -> None:
        type(self).dropped += 1

    def flush(self) -> None:
        try:
            super().flush()
        except OSError:  # disk full: what was buffered is lost, the caller is not
            type(self).dropped += 1

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            self.stream = None  # type: ignore[assignment]


_recent = RecentHandler()
_file_handler: QuietRotatingHandler | None = None
_problem: str | None = None


def setup(debug: bool = False, directory: Path | None = None) -> Path | None:
    """Send sparktop's log to `<directory or state dir>/sparktop.log`; return its path, or
    None when it cannot be opened (the reason is in `problem()`). Safe to call again."""
    global _file_handler, _problem
    LOGGER.setLevel(logging.DEBUG if debug else logging.INFO)
    LOGGER.propagate = False
    if _recent not in LOGGER.handlers:
        LOGGER.addHandler(_recent)
    path = (directory or paths.state_dir()) / LOG_NAME
    if _file_handler is not None:
        if Path(_file_handler.baseFilename) == path.resolve():
            return path
        LOGGER.removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = QuietRotatingHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        _problem = f"cannot write the log {path}: {exc.strerror or exc}"
        return None
    _problem = None
    handler.setFormatter(logging.Formatter(FORMAT))
    LOGGER.addHandler(handler)
    _file_handler = handler
    return path


def path() -> Path | None:
    """Where the log is written (None before `setup` or when it could not be opened)."""
    return Path(_file_handler.baseFilename) if _file_handler is not None else None


def problem() -> str | None:
    """Why the log could not be opened, or how many lines could not be written."""
    if _problem:
        return _problem
    if QuietRotatingHandler.dropped:
        return f"{QuietRotatingHandler.dropped} log line(s) could not be written (disk full?)"
    return None


def recent() -> list[Entry]:
    """Warnings and errors of this run, oldest first."""
    return list(_recent.entries)


def shutdown() -> None:
    """Close the log and forget this run's warnings and counts (tests switch state dirs)."""
    global _file_handler, _problem
    if _file_handler is not None:
        LOGGER.removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None
    LOGGER.removeHandler(_recent)
    _recent.entries.clear()
    QuietRotatingHandler.dropped = 0
    _problem = None
