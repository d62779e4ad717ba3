"""Per-server figures: CPU % (against /proc/PID/stat), disk space, the detail screen."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import free_port, run_cli, start_outside
from test_server_discovery import by_port, engine_launcher, poll_until

from sparktop.servers.monitor import ServerMonitor
from sparktop.servers.registry import Registry

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of /proc/PID/stat, read here without sparktop's code."""
    with open(f"/proc/{pid}/stat") as file:
        text = file.read()
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_busy_vllm(tmp_path, no_orphans) -> int:
    port = free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "busy")
    start_outside([str(launcher), "serve", "busy/model", "--port", str(port)], no_orphans)
    return port


def test_cpu_percent_is_the_proc_stat_delta_of_the_server_and_its_workers(tmp_path, no_orphans):
    port = start_busy_vllm(tmp_path, no_orphans)
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"))
    try:
        servers = poll_until(
            monitor, lambda s: (x := by_port(s, port)) and x.health == "ready" and x.children
        )
        server = by_port(servers, port)
        assert server is not None
        pids = [server.pid, *server.children]
        before, started = sum(cpu_seconds(p) for p in pids), time.monotonic()
        assert by_port(monitor.poll(), port).cpu_percent is not None  # since the last poll
        time.sleep(2.0)
        after, ended = sum(cpu_seconds(p) for p in pids), time.monotonic()
        server = by_port(monitor.poll(), port)
    finally:
        monitor.close()
    expected = 100.0 * (after - before) / (ended - started)
    assert expected > 50  # the fake burns a core or more (two on an idle box)
    assert server.cpu_percent == pytest.approx(expected, abs=15)


def test_status_json_and_table_show_cpu_percent(tmp_path, no_orphans):
    port = start_busy_vllm(tmp_path, no_orphans)
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"))
    try:
        poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "ready")
    finally:
        monitor.close()
    doc = json.loads(run_cli("status", "--json").stdout)
    server = next(s for s in doc["servers"] if s["port"] == port)
    assert server["cpu_percent"] > 30  # measured over the status call's own short window
    text = run_cli("status", env={**os.environ, "COLUMNS": "200"}).stdout
    header = next(line for line in text.splitlines() if "HEALTH" in line)
    row = next(line for line in text.splitlines() if f" {port} " in line)
    assert "CPU%" in header
    cell = row[header.index("CPU%") :].split()[0]
    assert cell.endswith("%") and int(cell[:-1]) > 30
