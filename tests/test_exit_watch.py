"""The servers loop's wait ends when a watched process exits, whoever its parent is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from conftest import start_outside

from sparktop.servers.exit_watch import ExitWatch


def test_a_wait_ends_when_a_watched_process_exits(no_orphans):
    sleeper = start_outside([sys.executable, "-c", "import time; time.sleep(60)"], no_orphans)
    other = start_outside([sys.executable, "-c", "import time; time.sleep(60)"], no_orphans)
    watch = ExitWatch()
    try:
        watch.watch([sleeper.pid, other.pid])
        assert watch.wait(0.05) == []  # nothing exited: the timeout
        threading.Timer(0.3, sleeper.send_signal, (signal.SIGKILL,)).start()
        started = time.monotonic()
        exited = watch.wait(30)
        assert exited == [sleeper.pid]
        assert time.monotonic() - started < 25  # woke on the exit, not the timeout
        assert other.poll() is None
    finally:
        watch.close()


def test_wake_ends_a_wait_and_unknown_pids_are_skipped():
    watch = ExitWatch()
    try:
        done = subprocess.run([sys.executable, "-c", "pass"])  # a PID that is gone now
        watch.watch([done.returncode or 999_999_999, 0, -1])
        threading.Timer(0.2, watch.wake).start()
        started = time.monotonic()
        assert watch.wait(30) == []
        assert time.monotonic() - started < 25
    finally:
        watch.close()
    watch.wake()  # after close: nothing happens
    assert watch.wait(0.01) == []


def test_closing_during_a_wait_never_touches_a_file_opened_since(tmp_path):
    """The app leaving wakes the servers loop and closes the watch while the loop's wait is
    in flight. The wait's read of its wake pipe used to land on whatever file took that
    descriptor number next, taking its first bytes in 64-byte reads (issue 15: a model file
    read right after the TUI closed came back without its GGUF header)."""
    model = tmp_path / "model.gguf"
    data = b"GGUF" + os.urandom(100_000)
    model.write_bytes(data)
    for _ in range(50):
        watch = ExitWatch()
        waiter = threading.Thread(target=watch.wait, args=(30,))
        waiter.start()
        time.sleep(0.002)  # the wait is in its poll
        watch.wake()
        watch.close()
        with open(model, "rb") as handle:
            time.sleep(0.002)  # the waiter runs meanwhile
            assert handle.read() == data
        waiter.join(25)
        assert not waiter.is_alive(), "close ends a wait in flight"
