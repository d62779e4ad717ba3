"""Wake the servers loop the moment a watched server process exits.

Between polls (2 s, 10 s when all is idle) a server stopped from outside would show as ready
until the next poll. A pidfd (Linux 5.3+) becomes readable when its process exits, whoever
its parent is, so one `poll()` waits for "the interval is over", "someone asked for a poll
now" and "a server went away" at once. Own code: no library wraps pidfds; where they are
missing (other kernels, a PID in a fixture tree) the wait is a plain timed wait.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Iterable


class ExitWatch:
    """A timed wait that ends early on `wake()` or when a watched process exits.

    `watch` and `wait` belong to one thread (the servers loop); `wake` and `close` may come
    from any. A `close` while a wait is in flight (the app leaving) only ends that wait: the
    wait closes the descriptors on its way out. Closing them under it let its read of the
    wake pipe land on whatever file took that descriptor number next (a download being
    verified, a model file read right after the TUI closed), taking its first bytes.
    """

    def __init__(self) -> None:
        self._fds: dict[int, int] = {}  # pid → pidfd
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._lock = threading.Lock()
        """Held while any descriptor here is closed or written, and while `wait` reads."""
        self._closed = False
        self._waiting = False

    def watch(self, pids: Iterable[int]) -> None:
        """Watch exactly these PIDs from now on (new ones opened, gone ones closed)."""
        wanted = {pid for pid in pids if pid and pid > 0}
        opener = getattr(os, "pidfd_open", None)
        with self._lock:
            if self._closed:
                return
            for pid in set(self._fds) - wanted:
                os.close(self._fds.pop(pid))
            if opener is None:
                return
            for pid in wanted - set(self._fds):
                try:
                    self._fds[pid] = opener(pid)
                except OSError:
                    continue  # gone already, not ours to see, or no pidfd here: timed wait only

    def wake(self) -> None:
        """End the current (or next) wait now; safe from any thread."""
        with self._lock:
            if not self._closed:  # closed: the descriptor number may be someone else's now
                self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # pipe full: a wake is already pending
            os.write(self._wake_w, b"!")

    def wait(self, timeout: float) -> list[int]:
        """Wait up to `timeout` seconds; the PIDs that exited meanwhile (not watched after)."""
        with self._lock:
            if self._closed or self._waiting:
                return []
            self._waiting = True
            by_fd = {fd: pid for pid, fd in self._fds.items()}
        try:
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            ready = poller.poll(max(0.0, timeout) * 1000)
            exited = []
            with self._lock:  # the descriptors stay open until the wait has ended
                for fd, _event in ready:
                    if fd == self._wake_r:
                        with contextlib.suppress(OSError):
                            while os.read(self._wake_r, 64):
                                pass
                    elif fd in by_fd:
                        pid = by_fd[fd]
                        exited.append(pid)
                        if self._fds.get(pid) == fd:
                            os.close(self._fds.pop(pid))
            return exited
        finally:
            with self._lock:
                self._waiting = False
                if self._closed:  # closed during the wait: its descriptors go now
                    self._release()

    def close(self) -> None:
        """Close the watch (a wait in flight ends now and closes the descriptors itself)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._waiting:
                self._poke()
            else:
                self._release()

    def _release(self) -> None:
        for fd in (*self._fds.values(), self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
