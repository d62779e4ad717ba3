"""Per-server figures: CPU % (against /proc/PID/stat), disk space, the detail screen."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import (
    free_port,
    make_app,
    run_cli,
    start_outside,
    tiny_entry,
    write_user_catalog,
)
from test_server_discovery import by_port, engine_launcher, poll_until
from test_tui_servers import wait_until

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


# -- disk space of the model folders ----------------------------------------------------------


def test_status_shows_the_free_space_of_the_model_folders_filesystem(tmp_path, isolated_dirs):
    models = tmp_path / "models" / "tiny"  # not downloaded yet: its parent's filesystem
    models.parent.mkdir()
    write_user_catalog(
        isolated_dirs["config"],
        [{**tiny_entry("tiny", models / "tiny.gguf", free_port()), "local_dir": str(models)}],
    )
    doc = json.loads(run_cli("status", "--json").stdout)
    vfs = os.statvfs(tmp_path)
    (disk,) = [d for d in doc["disks"] if str(models) in d["dirs"]]
    assert disk["total_bytes"] == vfs.f_blocks * vfs.f_frsize
    assert disk["free_bytes"] == pytest.approx(vfs.f_bavail * vfs.f_frsize, abs=256 << 20)
    assert os.stat(disk["mount"]).st_dev == os.stat(tmp_path).st_dev
    assert disk["needed_bytes"] == 0 and disk["low"] is False
    text = run_cli("status", env={**os.environ, "COLUMNS": "120"}).stdout
    assert f"Disk  {disk['mount']} " in text and "model folders)" in text


def test_downloads_needing_more_than_is_free_are_warned_about(tmp_path):
    from rich.console import Console

    from sparktop.cli.status_text import render_status
    from sparktop.probes.disk import DiskProbe
    from sparktop.snapshot import DownloadInfo, Snapshot

    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    big = DownloadInfo(id="1", repo="big/model", local_dir=str(tmp_path / "big"),
                       state="queued", total_bytes=free + (50 << 30))  # fmt: skip
    done = DownloadInfo(id="2", repo="old/model", local_dir=str(tmp_path / "old"),
                        state="done", total_bytes=free * 2)  # fmt: skip
    (disk,) = DiskProbe().read([tmp_path], [big, done])
    assert disk.needed_bytes == big.total_bytes and disk.low
    assert set(disk.dirs) == {str(tmp_path), str(tmp_path / "big")}
    console = Console(width=120, record=True, color_system=None)
    console.print(render_status(Snapshot(time=0, hostname="h", uptime_s=1, memory=None,
                                         disks=(disk,))))  # fmt: skip
    text = console.export_text()
    assert f"disk {disk.mount}: " in text and "downloads there still need" in text


async def test_the_top_bar_shows_free_disk_and_warns_when_downloads_need_more(
    tmp_path, isolated_dirs
):
    from dataclasses import replace

    models = tmp_path / "models"
    models.mkdir()
    write_user_catalog(
        isolated_dirs["config"],
        [{**tiny_entry("tiny", models / "tiny.gguf", free_port()), "local_dir": str(models)}],
    )
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: app.main.disks)
        (disk,) = [d for d in app.main.disks if str(models) in d.dirs]
        await wait_until(pilot, lambda: f"disk {disk.mount} " in app.main._topbar_text)
        # a download queued there that needs more than is free (as the loop would read it)
        app.main.disks = (replace(disk, needed_bytes=disk.free_bytes + (1 << 30)),)
        app.main._warn_low_disk()
        await pilot.pause()
        assert "free!" in app.main._topbar_text
        assert any("downloads there still need" in str(n.message) for n in app._notifications)


# -- the detail screen --------------------------------------------------------------------------


async def test_enter_on_a_server_shows_its_history_and_facts(
    llama_server, tiny_gguf, tmp_path, no_orphans
):
    import httpx

    from sparktop.ui.screens.server_detail import ServerDetailScreen
    from sparktop.ui.widgets.servers_panel import ServersTable

    port = free_port()
    start_outside(
        [llama_server, "-m", str(tiny_gguf), "--port", str(port), "-c", "512", "--metrics",
         "--hf-token", "s3cret"],
        no_orphans,
    )  # fmt: skip
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: any(s.port == port and s.health == "ready"
                                            for s in app.servers))  # fmt: skip
        app.query_one(ServersTable).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ServerDetailScreen))
        for _ in range(3):  # tokens generated while the detail is open
            httpx.post(
                f"http://127.0.0.1:{port}/completion",
                json={"prompt": "hello", "n_predict": 32},
                timeout=60,
            )
            app.main.wake()
            await pilot.pause(0.5)
        await wait_until(pilot, lambda: (app.screen.server.gen_tokens_total or 0) >= 32)
        text = app.screen.text()
        assert text.startswith(f"{app.screen.server.name}  (llama.cpp)  ready")
        (gen,) = [line for line in text.splitlines() if line.startswith("TG t/s")]
        assert set(gen.split("now")[0][8:].strip()) - {"▁"}  # a rise shows in the sparkline
        assert "KV " in text and "CPU " in text
        assert f"http://127.0.0.1:{port}" in text and "outside sparktop" in text
        command = next(line for line in text.splitlines() if line.startswith("command"))
        assert "llama-server" in command and "--hf-token '***'" in command
        assert "s3cret" not in text
        assert "generated " in text and "prompt tokens " in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ServerDetailScreen))
