"""The parent a served engine keeps: starts it, reaps it, writes how it ended (see exits.py).

    python -m sparktop.servers.waiter     # the spec arrives as JSON on stdin

Spec: `argv`, `env` (the server's environment), `exits` (the directory for the exit file),
`log` (the server's log, appended to) and `report_fd` (a pipe inherited from sparktop). The
waiter starts the server in a session and process group of its own, with its output in the
log, writes `{"pid", "start_ticks"}` or `{"error"}` to the pipe and closes it, then waits.
Its own output (none, unless Python itself fails) goes to the same log. Stdin closed with no
spec (a serve that was refused, or sparktop gone): it leaves quietly.

`Waiter` is sparktop's side. A waiter can be started ahead of its serve (`prestart()`, what
`sparktop serve` does first), so its interpreter's start overlaps sparktop's own imports and
checks instead of adding to the time until the engine runs.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    raw = sys.stdin.read()
    if not raw.strip():
        return 0  # not needed after all
    spec = json.loads(raw)
    with os.fdopen(int(spec["report_fd"]), "w") as report:
        try:
            log = os.open(spec["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            server = subprocess.Popen(
                spec["argv"], stdin=subprocess.DEVNULL, env=spec["env"],
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        except OSError as exc:
            report.write(json.dumps({"error": exc.strerror or str(exc)}))
            return 127
        from sparktop.servers.exits import start_ticks, write_exit  # after the exec: off its path

        ticks = start_ticks(server.pid)  # readable until reaped, even if it exited already
        report.write(json.dumps({"pid": server.pid, "start_ticks": ticks}))
    # set only now: ignored signals would be inherited by the server through exec
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    returncode = server.wait()
    try:
        write_exit(Path(spec["exits"]), server.pid, ticks, returncode)
    except OSError as exc:  # a full disk: the cause stays unknown, say why in the log
        print(f"sparktop waiter: cannot record the exit of pid {server.pid}: {exc}", flush=True)
        return 1
    return 0


class WaiterError(Exception):
    """The waiter could not start the server; str() is the reason."""


class Waiter:
    """A waiter process, started now and told later what to run (`start`) or to leave
    (`close`). Its own session: no terminal signal reaches it."""

    def __init__(self) -> None:
        self._read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sparktop.servers.waiter"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                close_fds=True, pass_fds=(write_fd,),
            )  # fmt: skip
        except OSError:
            os.close(self._read_fd)
            raise
        finally:
            os.close(write_fd)
        self._report_fd = write_fd  # pass_fds keeps the number in the child
        self._read_open = True
        reap_when_done(self.process)

    def start(
        self, argv: list[str], env: dict[str, str], exits: Path, log: Path
    ) -> tuple[int, int]:
        """Run `argv` (output appended to `log`): (server PID, its start ticks)."""
        spec = {"argv": argv, "env": env, "exits": str(exits), "log": str(log),
                "report_fd": self._report_fd}  # fmt: skip
        assert self.process.stdin is not None
        try:  # a waiter that died at once says so below
            self.process.stdin.write(json.dumps(spec).encode())
            self.process.stdin.close()
        except OSError:
            pass
        self._read_open = False  # _read_all closes it
        try:
            doc = json.loads(_read_all(self._read_fd, timeout=30.0) or "{}")
        except ValueError:
            doc = {}
        if not isinstance(doc.get("pid"), int):
            if self.process.poll() is None:
                self.process.kill()  # late, it would start a server nobody records
            raise WaiterError(doc.get("error") or "its waiter did not start (see the log)")
        return doc["pid"], int(doc.get("start_ticks") or 0)

    def close(self) -> None:
        """Not needed: the waiter leaves (its stdin ends)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        if self._read_open:  # once: the number may be someone else's afterwards
            self._read_open = False
            os.close(self._read_fd)


def reap_when_done(popen: subprocess.Popen) -> None:
    """Wait for a child on a thread of its own, so it never lingers as a zombie: waitpid on
    its PID alone (never on -1, which would take other code's children from it)."""
    threading.Thread(target=popen.wait, name=f"sparktop-reap-{popen.pid}", daemon=True).start()


_ready: Waiter | None = None
_ready_lock = threading.Lock()


def prestart() -> None:
    """Start the next serve's waiter now (at most one waits; unused, it leaves with us)."""
    global _ready
    with _ready_lock:
        if _ready is None:
            try:
                _ready = Waiter()
            except OSError:
                _ready = None  # take() will try again and say why


def take() -> Waiter:
    """The waiter started ahead, else a new one."""
    global _ready
    with _ready_lock:
        waiter, _ready = _ready, None
    if waiter is not None and waiter.process.poll() is None:
        return waiter
    return Waiter()


def _read_all(fd: int, timeout: float) -> str:
    """Everything written to the pipe `fd` until its writer closes it (closes `fd`)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
