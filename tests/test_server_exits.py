"""How a server ended, told in its row and in `status --json`; nothing left as a zombie.

A real llama-server (tiny model) started by the TUI; those started by `sparktop serve` are in
test_servers_cli.py (the crash and exit tests). The kernel's OOM line cannot be produced here:
its parser is tested on captured lines.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from conftest import free_port, make_app, tiny_entry, write_user_catalog
from test_tui_servers import names, select, serve_from_catalog, wait_until

from sparktop.servers.exits import (
    OOM,
    UNKNOWN,
    ExitCauses,
    describe,
    kernel_lines,
    oom_killed,
    parse_oom,
    write_exit,
)
from sparktop.ui.widgets.servers_panel import ServersTable

KILLED = "killed by signal 9 (SIGKILL)"
# captured from a box's /dev/kmsg and `dmesg` (PIDs and sizes as they were)
KMSG_OOM = (
    "3,2218,2735166410,-;Out of memory: Killed process 48213 (llama-server) "
    "total-vm:138212708kB, anon-rss:120842116kB, file-rss:0kB, shmem-rss:0kB, UID:1000 "
    "pgtables:241012kB oom_score_adj:0"
)
DMESG_CGROUP_OOM = (
    "[ 2735.166410] Memory cgroup out of memory: Killed process 48213 (llama-server) "
    "total-vm:138212708kB, anon-rss:120842116kB, file-rss:0kB, shmem-rss:0kB, UID:1000 "
    "pgtables:241012kB oom_score_adj:0"
)


def zombies(pids: set[int]) -> set[int]:
    """Those of `pids` that have ended but were not reaped."""
    out = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow
async def test_a_tui_started_server_killed_leaves_no_zombie_and_says_why(
    llama_server, tiny_gguf, isolated_dirs
):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(160, 36)) as pilot:
        await serve_from_catalog(pilot, app, "tiny")
        await wait_until(pilot, lambda: names(app).get("tiny") == "ready")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.busy is None)
        server = next(s for s in app.servers if s.name == "tiny")
        assert server.pid is not None and server.pgid is not None
        started = {server.pid} | {c.pid for c in psutil.Process().children(recursive=True)}

        os.killpg(server.pgid, signal.SIGKILL)
        await wait_until(pilot, lambda: names(app).get("tiny") == "crashed", timeout=20)
        await wait_until(pilot, lambda: not zombies(started), timeout=5)

        def cause() -> str | None:
            return next(s.exit_cause for s in app.servers if s.name == "tiny")

        # at once, or on the next poll when the waiter was slower to write it than the poll
        await wait_until(pilot, lambda: cause() == KILLED, timeout=10)
        await pilot.pause(0.3)
        row = app.query_one(ServersTable).get_row_at(0)
        assert row[0] == "tiny" and row[5] == f"crashed: {KILLED}"

        select(app, "tiny")  # forget it: the record goes, and still no zombie anywhere
        await pilot.press("x")
        await wait_until(pilot, lambda: "tiny" not in names(app), timeout=20)
        assert not zombies(started)
        assert not zombies({c.pid for c in psutil.Process().children(recursive=True)})


# -- the words, the kernel's OOM line, the cause of one end ----------------------------------


def test_exit_statuses_in_words():
    assert describe(0) == "exited with 0"
    assert describe(1) == "exited with 1"
    assert describe(-9) == KILLED
    assert describe(-15) == "killed by signal 15 (SIGTERM)"
    assert describe(-200) == "killed by signal 200"


def test_the_oom_killer_line_is_read_from_kmsg_and_dmesg():
    assert parse_oom(KMSG_OOM) == (48213, pytest.approx(2735.16641))
    assert parse_oom(DMESG_CGROUP_OOM) == (48213, pytest.approx(2735.16641))
    assert parse_oom("Killed process 77 (vllm) total-vm:1kB") == (77, None)
    assert parse_oom("6,2219,2735166999,-;oom_reaper: reaped process 48213 (llama-server)") is None
    started_before = int(2700 * os.sysconf("SC_CLK_TCK"))
    started_after = int(2800 * os.sysconf("SC_CLK_TCK"))  # a later process with the same PID
    assert oom_killed(48213, started_before, [KMSG_OOM])
    assert not oom_killed(48213, started_after, [KMSG_OOM])
    assert not oom_killed(4821, started_before, [KMSG_OOM])


def test_a_saved_kernel_log_is_searched(tmp_path: Path):
    log = tmp_path / "dmesg.txt"
    log.write_text(f"[    0.000000] Linux version 6.8\n{DMESG_CGROUP_OOM}\n")
    assert kernel_lines(log) == [DMESG_CGROUP_OOM]
    assert kernel_lines(tmp_path / "missing") == []


def test_causes_from_the_exit_file_and_the_kernel_log(tmp_path: Path):
    ticks = int(2700 * os.sysconf("SC_CLK_TCK"))
    write_exit(tmp_path, 48213, ticks, -9)
    write_exit(tmp_path, 500, 10, 1)
    assert ExitCauses(tmp_path, kernel=lambda: [KMSG_OOM]).of(48213, ticks) == OOM
    assert ExitCauses(tmp_path, kernel=lambda: []).of(48213, ticks) == KILLED
    causes = ExitCauses(tmp_path, kernel=lambda: [KMSG_OOM])
    assert causes.of(500, 10) == "exited with 1"
    assert causes.of(500, 11) == UNKNOWN  # the file is another process's with that PID
    assert causes.of(600, 10) == UNKNOWN  # no waiter saw it end, no kernel line
    assert causes.of(600, 10, exit_code=-15) == "killed by signal 15 (SIGTERM)"  # older record


def test_a_waiter_started_ahead_and_not_needed_leaves(tmp_path):
    """`sparktop serve` starts its waiter before it knows it will serve; a refused serve (or
    sparktop leaving) must not leave that waiter behind."""
    import subprocess
    import sys

    from conftest import wait_for

    from sparktop.servers import waiter

    unused = waiter.Waiter()
    unused.close()
    assert unused.process.wait(timeout=10) == 0
    script = (
        "from sparktop.servers import waiter; waiter.prestart(); "
        "print(waiter._ready.process.pid, flush=True)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    left_behind = int(done.stdout.split()[0])

    def gone() -> bool:  # exited (a zombie only if this box's init does not reap)
        try:
            return psutil.Process(left_behind).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout=10)
