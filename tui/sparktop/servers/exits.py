"""Why a server sparktop started is gone, in words: `exited with 1`, `killed by signal 9
(SIGKILL)`, `out of memory (OOM killer)`, or `exited (cause unknown)`.

Only a process's parent learns its exit status, and sparktop cannot stay that parent:
`sparktop serve` exits once the server is ready, and the TUI may quit while it runs. So
each server is started by a tiny waiter (`sparktop.servers.waiter`) that stays its parent,
reaps it at once (no zombie) and writes its status to `<state>/exits/<pid>.json`. The
server still leads its own session and process group, so discovery, stop by PGID and
adoption after a restart see it as before. A SIGKILL is told apart from the OOM killer by
the kernel log (`/dev/kmsg`, when readable: root, or kernel.dmesg_restrict=0).

Standard library only: the waiter imports this module and starts in a few milliseconds.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sparktop.atomic import write_json_atomic

OOM = "out of memory (OOM killer)"
UNKNOWN = "exited (cause unknown)"
KMSG = Path("/dev/kmsg")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
KERNEL_EVERY_S = 10.0
"""An end not yet explained is looked up in the kernel log again at most this often."""

# "Out of memory: Killed process 4242 (llama-server) total-vm:…", the cgroup form
# "Memory cgroup out of memory: Killed process 4242 (…)", as /dev/kmsg ("6,812,5123456,-;…")
# or dmesg ("[ 5123.456789] …") writes them
_KILLED = re.compile(r"Killed process (\d+) \(")
_KMSG_TIME = re.compile(r"^\d+,\d+,(\d+),[^;]*;")
_DMESG_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


def describe(returncode: int) -> str:
    """An exit status as Popen gives it (negative: the signal that killed it), in words."""
    if returncode >= 0:
        return f"exited with {returncode}"
    number = -returncode
    try:
        return f"killed by signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"killed by signal {number}"


@dataclass(frozen=True)
class Exit:
    """How one server process ended, as its waiter saw it."""

    pid: int
    start_ticks: int
    returncode: int
    ended_at: float


def exit_path(directory: Path, pid: int) -> Path:
    return directory / f"{pid}.json"


def write_exit(directory: Path, pid: int, start_ticks: int, returncode: int) -> None:
    doc = {"pid": pid, "start_ticks": start_ticks, "returncode": returncode,
           "ended_at": time.time()}  # fmt: skip
    write_json_atomic(exit_path(directory, pid), doc)


def read_exit(directory: Path, pid: int, start_ticks: int) -> Exit | None:
    """The end of process `pid` started at `start_ticks` (not of an older one with its PID)."""
    try:
        doc = json.loads(exit_path(directory, pid).read_text())
        found = Exit(int(doc["pid"]), int(doc["start_ticks"]), int(doc["returncode"]),
                     float(doc.get("ended_at") or 0.0))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if found.pid == pid and found.start_ticks == start_ticks else None


def start_ticks(pid: int, proc: Path = Path("/proc")) -> int:
    """Clock ticks from boot to the start of `pid` (/proc/PID/stat field 22); 0 if gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
        return int(text[text.rfind(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


# -- the kernel log -------------------------------------------------------------------------


def parse_oom(line: str) -> tuple[int, float | None] | None:
    """(PID, seconds since boot or None) of an OOM killer's `Killed process` line, else None."""
    found = _KILLED.search(line)
    if found is None:
        return None
    stamp = _KMSG_TIME.match(line)
    if stamp:
        return int(found.group(1)), int(stamp.group(1)) / 1e6
    stamp = _DMESG_TIME.match(line)
    return int(found.group(1)), float(stamp.group(1)) if stamp else None


def kernel_lines(path: Path = KMSG) -> list[str]:
    """The kernel log's `Killed process` lines (empty when it cannot be read).

    /dev/kmsg hands out one record a read, without blocking when opened O_NONBLOCK; a record
    overwritten while reading (EPIPE) is skipped. A plain file (a saved dmesg) is read whole.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return []
    out: list[str] = []
    try:
        if not os.path.isfile(path):
            while True:
                try:
                    record = os.read(fd, 8192)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.EPIPE:
                        continue
                    break
                if not record:
                    break
                if b"Killed process" in record:
                    out.append(record.decode("utf-8", "replace").split("\n", 1)[0])
            return out
        with os.fdopen(os.dup(fd), "rb") as handle:
            return [
                raw.decode("utf-8", "replace").rstrip("\n")
                for raw in handle
                if b"Killed process" in raw
            ]
    finally:
        os.close(fd)


def oom_killed(pid: int, started_ticks: int, lines: Iterable[str]) -> bool:
    """Did the OOM killer kill `pid` (at or after its start, so not an older one's PID)?"""
    started = started_ticks / TICKS
    for line in lines:
        found = parse_oom(line)
        if found and found[0] == pid and (found[1] is None or found[1] >= started - 1):
            return True
    return False


# -- the cause of one end -------------------------------------------------------------------


@dataclass
class ExitCauses:
    """Causes of ended servers, each worked out once: the exit file is cheap to read again,
    the kernel log is read at most every KERNEL_EVERY_S for an end not yet explained."""

    directory: Path
    kernel: Callable[[], list[str]] = kernel_lines
    _known: dict[tuple[int, int], str] = field(default_factory=dict)
    _asked: dict[tuple[int, int], float] = field(default_factory=dict)

    def of(self, pid: int, start_ticks: int, exit_code: int | None = None) -> str:
        """The cause for the process `pid` that started at `start_ticks`; `exit_code`: its
        status when sparktop itself learned it (recorded by an older sparktop)."""
        key = (pid, start_ticks)
        if key in self._known:
            return self._known[key]
        ended = read_exit(self.directory, pid, start_ticks)
        code = ended.returncode if ended is not None else exit_code
        if code is not None and code != -signal.SIGKILL:
            return self._keep(key, describe(code))
        now = time.monotonic()
        if now - self._asked.get(key, -KERNEL_EVERY_S) < KERNEL_EVERY_S and code is None:
            return UNKNOWN
        self._asked[key] = now
        if oom_killed(pid, start_ticks, self.kernel()):
            return self._keep(key, OOM)
        return self._keep(key, describe(code)) if code is not None else UNKNOWN

    def _keep(self, key: tuple[int, int], cause: str) -> str:
        self._known[key] = cause
        self._asked.pop(key, None)
        return cause
