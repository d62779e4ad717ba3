"""`sparktop status` at 80 columns and piped: PIDs, ports and served names are never cut
(less important columns are left out instead); `status --json` counts are integers."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from conftest import FIXTURES, free_port, machine_env, run_cli, start_outside, wait_for
from rich.console import Console
from test_server_discovery import engine_launcher

from sparktop.cli.status_text import render_status
from sparktop.snapshot import ServerInfo, Snapshot

LONG_NAME = "qwen3-coder-next-480b-a35b-instruct-q4km"  # 40 characters
BIG_PID = 1234567


def render(servers: tuple[ServerInfo, ...], width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False)
    console.print(render_status(Snapshot(0.0, "box", None, None, servers=servers), width))
    return out.getvalue()


def row_of(text: str, name: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(name)), "")


def test_a_long_name_a_big_pid_and_port_stay_whole_at_80_columns():
    crashed = ServerInfo(LONG_NAME + "-b", "llama.cpp", None, 40001, health="crashed",
                         exit_cause="killed by signal 9 (SIGKILL)", managed=True)  # fmt: skip
    ready = ServerInfo(LONG_NAME, "llama.cpp", BIG_PID, 54321, health="ready",
                       rss_bytes=3 << 30, running=2, waiting=0, managed=True)  # fmt: skip
    text = render((ready, crashed), 80)
    assert "…" not in text
    row = row_of(text, LONG_NAME + " ")
    assert f"{BIG_PID}" in row.split() and "54321" in row.split() and "ready" in row
    assert "40001" in row_of(text, LONG_NAME + "-b").split()
    assert "left out at 80 columns: ENGINE" in text  # what was left out, and where it is
    assert all(len(line) <= 80 for line in text.splitlines())
    wide = render((ready, crashed), 200)
    assert "left out" not in wide and "RUN/WAIT" in wide and "2/0" in row_of(wide, LONG_NAME)


def fake_machine(tmp_path: Path, pid: int, argv: list[str]) -> dict[str, str]:
    """The nogpu fixture machine with one more process: a llama-server with PID `pid`."""
    root = tmp_path / "machine"
    shutil.copytree(FIXTURES / "nogpu", root)
    base = root / "proc" / str(pid)
    base.mkdir()
    (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (base / "comm").write_text("llama-server\n")
    fields = ["S", "1", str(pid), str(pid)] + ["0"] * 15 + ["4242"] + ["0"] * 30
    (base / "stat").write_text(f"{pid} (llama-server) " + " ".join(fields) + "\n")
    (base / "statm").write_text("1000 256 10 1 0 100 0\n")
    env = machine_env("nogpu")
    env.update(SPARKTOP_PROC_ROOT=str(root / "proc"), SPARKTOP_SYS_ROOT=str(root / "sys"),
               SPARKTOP_ROOT=str(root))  # fmt: skip
    env.pop("COLUMNS", None)
    return env


def test_status_piped_and_at_80_columns_shows_them_whole(tmp_path):
    port = 10000 + free_port() % 50000  # five digits, and nobody listens there
    argv = ["/opt/llama/llama-server", "-m", "/m/x.gguf", "--port", str(port),
            "--alias", LONG_NAME]  # fmt: skip
    env = fake_machine(tmp_path, BIG_PID, argv)
    for extra in ({}, {"COLUMNS": "80"}):  # piped: Rich's 80 columns; then a terminal's
        result = run_cli("status", env={**env, **extra})
        assert result.returncode == 0, result.stderr
        row = row_of(result.stdout, LONG_NAME)
        cells = [cell for cell in row.split() if cell != "*"]  # *: not started by sparktop
        assert [LONG_NAME, str(BIG_PID), str(port)] == cells[:3], result.stdout
        assert "…" not in result.stdout


def test_status_json_counts_are_integers(tmp_path, no_orphans):
    port = free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "ok")
    start_outside([str(launcher), "serve", "Qwen/Qwen3-Coder-Next-FP8", "--port", str(port),
                   "--served-model-name", "counted"], no_orphans)  # fmt: skip

    def counted() -> dict | None:
        doc = json.loads(run_cli("status", "--json").stdout)
        return next((s for s in doc["servers"] if s["name"] == "counted"
                     and s["running"] is not None), None)  # fmt: skip

    server = wait_for(counted, timeout=30, interval=0.5)
    assert server["running"] == 3 and type(server["running"]) is int
    assert server["waiting"] == 1 and type(server["waiting"]) is int
    # a document from an older sparktop (floats) is written back with integers
    again = ServerInfo(name="x", engine="vllm", pid=1, port=1, running=2.0, waiting=0.0)
    assert json.dumps(again.to_json()).count('"running": 2,') == 1
    assert '"waiting": 0,' in json.dumps(again.to_json())
