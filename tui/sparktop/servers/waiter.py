"""The parent a served engine keeps: starts it, reaps it, writes how it ended (see exits.py).

    python -m sparktop.servers.waiter     # the spec arrives as JSON on stdin

Spec: `argv`, `env` (the server's environment), `exits` (the directory for the exit file)
and `report_fd` (a pipe inherited from sparktop). The waiter starts the server in a session
and process group of its own (as sparktop did before waiters), writes `{"pid", "start_ticks"}`
or `{"error"}` to the pipe and closes it, then waits. Its own output (none, unless Python
itself fails) goes to the server's log, which it shares.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def main() -> int:
    spec = json.load(sys.stdin)
    with os.fdopen(int(spec["report_fd"]), "w") as report:
        try:
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


if __name__ == "__main__":
    sys.exit(main())
