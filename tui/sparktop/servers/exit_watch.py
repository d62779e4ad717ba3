"""Wake the servers loop the moment a watched server process exits.

Between polls (2 s, 5 s when all is idle) a server stopped from outside would show as ready
until the next poll. A pidfd (Linux 5.3+) becomes readable when its process exits, whoever
its parent is, so one `poll()` waits for "the interval is over", "someone asked for a poll
now" and "a server went away" at once. Own code: no library wraps pidfds; where they are
missing (other kernels, a PID in a fixture tree) the wait is a plain timed wait.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Iterable


class ExitWatch:
    """A timed wait that ends early on `wake()` or when a watched process exits."""

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}  # pid → pidfd
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._closed = False

    def watch(self, pids: Iterable[int]) -> None:
        """Watch exactly these PIDs from now on (new ones opened, gone ones closed)."""
        wanted = {pid for pid in pids if pid and pid > 0}
        for pid in set(self._fds) - wanted:
            os.close(self._fds.pop(pid))
        opener = getattr(os, "pidfd_open", None)
        if opener is None:
            return
        for pid in wanted - set(self._fds):
            try:
                self._fds[pid] = opener(pid)
            except OSError:
                continue  # gone already, not ours to see, or no pidfd here: timed wait only

    def wake(self) -> None:
        """End the current (or next) wait now; safe from any thread."""
        if self._closed:
            return  # the descriptor number may belong to someone else by now
        with contextlib.suppress(OSError):  # pipe full: a wake is already pending
            os.write(self._wake_w, b"!")

    def wait(self, timeout: float) -> list[int]:
        """Wait up to `timeout` seconds; the PIDs that exited meanwhile (not watched after)."""
        if self._closed:
            return []
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        by_fd = {fd: pid for pid, fd in self._fds.items()}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        ready = poller.poll(max(0.0, timeout) * 1000)
        exited = []
        for fd, _event in ready:
            if fd == self._wake_r:
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 64):
                        pass
            elif fd in by_fd:
                pid = by_fd[fd]
                exited.append(pid)
                if self._fds.get(pid) == fd:  # not closed under us by close()
                    os.close(self._fds.pop(pid))
        return exited

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.watch(())
        os.close(self._wake_r)
        os.close(self._wake_w)
