"""The process table through psutil on this machine's /proc, and through the small file
reader for a proc tree elsewhere (fixture machines, SPARKTOP_PROC_ROOT): both say the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, wait_for

from sparktop.probes import ProbeRoots
from sparktop.probes.procfs import process_name
from sparktop.servers import procscan
from sparktop.servers.procscan import REAL_PROC, ProcessScanner, read_argv, read_rss, read_stat


def test_psutil_and_the_file_reader_agree_on_this_machine():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "an argument", ""],
        stdin=subprocess.DEVNULL,
    )
    try:
        library, files = procscan._PsutilTable(), procscan._FileTable(REAL_PROC)
        assert child.pid in library.pids()
        wait_for(lambda: files.argv(child.pid)[-1:] == ("an argument",), timeout=10)
        for pid in (os.getpid(), child.pid, 1):
            ours, theirs = files.stat(pid), library.stat(pid)
            assert ours is not None and theirs is not None
            assert (theirs.ppid, theirs.pgid, theirs.start_ticks, theirs.state[0]) == (
                ours.ppid, ours.pgid, ours.start_ticks, ours.state[0],
            )  # fmt: skip
            assert theirs.comm.startswith(ours.comm)  # psutil's name: argv[0] past 15 bytes
            assert library.argv(pid) == files.argv(pid)
        assert library.argv(child.pid)[-1] == "an argument"  # trailing empty dropped
        assert read_stat(REAL_PROC, child.pid) == library.stat(child.pid)
        assert read_argv(REAL_PROC / str(child.pid) / "cmdline") == files.argv(child.pid)
        rss, read = read_rss(REAL_PROC, child.pid), files.rss(child.pid)
        assert rss is not None and read is not None and abs(rss - read) < 1024 * 1024
        assert process_name(child.pid) == Path(sys.executable).name
    finally:
        child.kill()
        child.wait()
    assert read_stat(REAL_PROC, child.pid) is None and read_rss(REAL_PROC, child.pid) is None


def test_a_gone_process_has_no_facts():
    child = subprocess.Popen(["true"])
    child.wait()
    assert read_stat(REAL_PROC, child.pid) is None
    assert read_argv(REAL_PROC / str(child.pid) / "cmdline") == ()
    assert process_name(child.pid) is None


def write_process(proc: Path, pid: int, ppid: int, argv: list[str], comm: str) -> None:
    base = proc / str(pid)
    base.mkdir(parents=True)
    (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (base / "comm").write_text(comm + "\n")
    fields = ["S", str(ppid), str(pid), str(pid)] + ["0"] * 15 + ["4242"] + ["0"] * 30
    (base / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
    (base / "statm").write_text("1000 256 10 1 0 100 0\n")


def test_a_proc_tree_elsewhere_is_read_from_its_files(tmp_path):
    proc = tmp_path / "proc"
    argv = ["/opt/llama/llama-server", "-m", "/m/x.gguf", "--port", "8123", "--alias", "fx"]
    write_process(proc, 300, 1, argv, "llama-server")
    write_process(proc, 301, 300, ["/bin/sleep", "100"], "sleep")
    (proc / "uptime").write_text("100.00 50.00\n")
    servers = ProcessScanner(ProbeRoots.under(tmp_path)).scan()
    assert [(s.pid, s.argv, s.start_ticks, s.launch.port) for s in servers] == [
        (300, tuple(argv), 4242, 8123)
    ]
    assert servers[0].rss_bytes == 256 * procscan.PAGE
    assert procscan.process_age(proc, 4242) == 100.0 - 4242 / procscan.TICKS
    assert process_name(4242, FIXTURES / "spark" / "proc") == "llama-server"  # its comm file


def test_the_suite_sees_only_its_own_servers(tmp_path, no_orphans):
    """SPARKTOP_TEST_RUN (set by conftest) scopes the scan to processes that carry it: a
    server somebody else started on this box is not in the suite's view, ours is."""
    from conftest import free_port, start_outside
    from test_server_discovery import engine_launcher

    launcher = engine_launcher(tmp_path, "llama-server", "llama.cpp", "ok")
    theirs_env = {k: v for k, v in os.environ.items() if k != "SPARKTOP_TEST_RUN"}
    theirs = start_outside([str(launcher), "--port", str(free_port()), "--alias", "theirs"],
                           no_orphans, env=theirs_env)  # fmt: skip
    ours = start_outside([str(launcher), "--port", str(free_port()), "--alias", "ours"], no_orphans)
    scanner = ProcessScanner()

    def seen() -> set[int]:
        return {server.pid for server in scanner.scan()}

    wait_for(lambda: ours.pid in seen(), timeout=10)
    assert theirs.pid not in seen() and theirs.poll() is None
