"""Faults a week in a tmux pane brings: a GPU lost mid-run, sysfs files vanishing, state
files corrupt, truncated or from an older sparktop, a full disk, the wall clock jumping.
Each must show as a state on screen (or a one-line error), never a crash, and nothing
already written may be lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, load_fake_nvml, run_cli, tiny_entry, write_user_catalog

from sparktop import logs
from sparktop.probes import ProbeRoots
from sparktop.probes.system import SystemProbe
from sparktop.ui.app import SparktopApp
from sparktop.ui.widgets.gpu_panel import GpuPanel
from sparktop.ui.widgets.memory_panel import MemoryPanel

DEVICE_QUERIES = [
    "nvmlDeviceGetName",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
]
STRIX_DEVICE = "sys/devices/pci0000:00/0000:00:08.1/0000:c5:00.0"


@pytest.fixture
def own_log(isolated_dirs):
    """sparktop's log in the test's state dir, as the CLI sets it up."""
    logs.setup(directory=isolated_dirs["state"])
    yield isolated_dirs["state"] / logs.LOG_NAME
    logs.shutdown()


async def refreshes(app: SparktopApp, pilot, count: int, timeout: float = 10.0) -> None:
    """Wait until the view has shown `count` more snapshots."""
    target = app.refreshes + count
    deadline = time.monotonic() + timeout
    while app.refreshes < target:
        assert time.monotonic() < deadline, f"the view stopped refreshing at {app.refreshes}"
        await pilot.pause(0.02)


# -- GPUs ------------------------------------------------------------------------------------


async def test_a_gpu_lost_mid_run_is_shown_logged_and_recovers(own_log):
    scenario = json.loads((FIXTURES / "discrete" / "nvml.json").read_text())
    nvml = load_fake_nvml(scenario)
    probe = SystemProbe(ProbeRoots.under(FIXTURES / "discrete"), nvml=nvml)
    app = SparktopApp(probe=probe, interval=0.05, watch_servers=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshes(app, pilot, 2)
        assert "NVIDIA H100 PCIe" in app.query_one(GpuPanel).text()
        # the GPU falls off the bus: every device query now answers GPU_IS_LOST
        scenario["devices"][0]["fail_after_calls"] = dict.fromkeys(DEVICE_QUERIES, 0)
        await refreshes(app, pilot, 3)
        gpus = app.query_one(GpuPanel).text()
        assert "NVML: GPU is lost (retrying)" in gpus, gpus
        assert "Used " in app.query_one(MemoryPanel).text()  # the rest keeps working
        assert "warning" in str(app.query_one("#topbar").render())  # counted in the top bar
        await pilot.press("w")
        await pilot.pause()
        assert "GPU is lost" in app.screen.query_one("#text").text
        await pilot.press("escape")
        # the GPU comes back (driver reloaded): shown again without a restart
        del scenario["devices"][0]["fail_after_calls"]
        await refreshes(app, pilot, 3)
        assert "NVIDIA H100 PCIe" in app.query_one(GpuPanel).text()
        assert "lost" not in app.query_one(GpuPanel).text().lower()
    assert "WARNING sparktop: GPU:" in own_log.read_text()


async def test_sysfs_files_vanishing_mid_run_leave_unknowns_then_no_gpu(tmp_path):
    root = tmp_path / "strix"
    shutil.copytree(FIXTURES / "strix", root, symlinks=True)
    probe = SystemProbe(ProbeRoots.under(root), nvml=load_fake_nvml("strix"))
    app = SparktopApp(probe=probe, interval=0.05, watch_servers=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await refreshes(app, pilot, 2)
        assert "87%" in app.query_one(GpuPanel).text()
        device = root / STRIX_DEVICE
        for name in ("gpu_busy_percent", "mem_info_gtt_used", "mem_info_vram_used"):
            (device / name).unlink()
        shutil.rmtree(device / "hwmon")
        await refreshes(app, pilot, 3)
        text = app.query_one(GpuPanel).text()
        assert "Strix Halo" in text and "87%" not in text and "—" in text  # unknown, not 0
        shutil.rmtree(root / "sys" / "class" / "drm")  # the card is gone altogether
        await refreshes(app, pilot, 3)
        assert "No GPU visible" in app.query_one(GpuPanel).text()
        assert "Used " in app.query_one(MemoryPanel).text()


# -- state files -----------------------------------------------------------------------------

DAMAGE = {
    "corrupt": b"\x00\xff{not json at all",
    "truncated": b'{"version": 1, "servers": [{"name": "a", "pid": 12',
    "wrong shape": b'["a", "list"]',
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_state_files_are_named_kept_aside_and_never_fatal(isolated_dirs, damage):
    state, data = isolated_dirs["state"], isolated_dirs["data"]
    state.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True)
    files = [state / "servers.json", state / "ui.json", data / "downloads.json"]
    for path in files:
        path.write_bytes(DAMAGE[damage])
    (data / "bench.sqlite3").write_bytes(b"SQLite format 2\x00 this is not a database" * 10)

    status = run_cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert not [s for s in json.loads(status.stdout)["servers"] if s["managed"]]
    results = run_cli("results")
    assert results.returncode == 0, results.stderr
    assert "bench.sqlite3" in results.stderr and "kept as" in results.stderr
    for path in files:  # reading never rewrites what it could not understand
        assert path.read_bytes() == DAMAGE[damage]

    # the next write of each store keeps the damaged file beside the new one
    from sparktop.downloads.records import DownloadStore
    from sparktop.servers.registry import Registry
    from sparktop.state import StateFile

    ui = StateFile("ui.json")
    assert ui.load() == {} and "ui.json" in (ui.problem or "")
    assert ui.update(theme="sparktop-light")
    assert json.loads((state / "ui.json").read_text()) == {"theme": "sparktop-light"}
    registry = Registry()
    assert registry.load() == [] and "servers.json" in (registry.problem or "")
    assert registry.remove(-1)
    downloads = DownloadStore()
    downloads.save({"id": "x", "state": "done"})
    assert [r["id"] for r in downloads.load()] == ["x"]
    for path in [*files, data / "bench.sqlite3"]:
        kept = list(path.parent.glob(path.name + ".damaged-*"))
        assert len(kept) == 1, f"{path.name}: the damaged file must be kept"
        if path in files:
            assert kept[0].read_bytes() == DAMAGE[damage]


async def test_a_corrupt_ui_state_warns_on_screen_and_the_app_starts(isolated_dirs, own_log):
    isolated_dirs["state"].mkdir(parents=True, exist_ok=True)
    (isolated_dirs["state"] / "ui.json").write_text('{"theme": "sparktop-li')
    probe = SystemProbe(ProbeRoots.under(FIXTURES / "spark"), nvml=load_fake_nvml("spark"))
    app = SparktopApp(probe=probe, interval=3600, watch_servers=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.snapshot_ready.wait(), 10)
        await pilot.pause()
        assert app.theme == "sparktop-dark"
        shown = [n.message for n in app._notifications]
        assert any("ui.json" in m and "unreadable" in m for m in shown), shown
    assert "ui.json" in own_log.read_text()


def test_a_server_record_from_an_older_sparktop_is_adopted(llama_server, tiny_gguf, isolated_dirs):
    """Records written before `pgid` and `served_name` existed still name a live server;
    fields a newer sparktop wrote are kept when the file is written again."""
    from conftest import free_port

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    path = isolated_dirs["state"] / "servers.json"
    data = json.loads(path.read_text())
    record = data["servers"][0]
    for newer_field in ("pgid", "served_name", "rpc_workers", "proxy_port"):
        record.pop(newer_field, None)
    record["from_the_future"] = {"keep": "me"}
    data["version"] = 0
    path.write_text(json.dumps(data))

    server = json.loads(run_cli("status", "--json").stdout)["servers"][0]
    assert server["managed"] is True and server["pid"] == record["pid"]
    stop = run_cli("stop", "tiny", timeout=60)
    assert stop.returncode == 0, stop.stderr
    kept = json.loads(path.read_text())["servers"][0]
    assert kept["from_the_future"] == {"keep": "me"}


# -- a full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def full_disk(where: Path, size_kib: int = 256):
    """A real, small file system at `where` (tmpfs), filled to the last byte."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> None:
    with contextlib.suppress(OSError), open(where / "filler", "wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 4096)


async def test_a_full_disk_keeps_the_previous_state_and_says_so(isolated_dirs, monkeypatch):
    state = isolated_dirs["state"]
    with full_disk(state):
        (state / "ui.json").write_text('{"theme": "sparktop-dark", "other": 1}\n')
        logs.setup(directory=state)
        try:
            fill(state)
            probe = SystemProbe(ProbeRoots.under(FIXTURES / "spark"), nvml=load_fake_nvml("spark"))
            app = SparktopApp(probe=probe, interval=0.05, watch_servers=False)
            async with app.run_test(size=(80, 24)) as pilot:
                await refreshes(app, pilot, 2)
                await pilot.press("c")  # switch theme: saving it fails
                await pilot.pause(0.2)
                shown = [n.message for n in app._notifications]
                assert any("No space left on device" in m for m in shown), shown
                await refreshes(app, pilot, 3)  # and the view goes on
            assert json.loads((state / "ui.json").read_text()) == {
                "theme": "sparktop-dark",
                "other": 1,
            }
            assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]
        finally:
            logs.shutdown()


def test_serve_with_a_full_state_disk_fails_in_one_line_and_leaves_no_server(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    from conftest import free_port

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    state = isolated_dirs["state"]
    with full_disk(state):
        fill(state)
        serve = run_cli("serve", "tiny", timeout=90)
        assert serve.returncode != 0
        message = serve.stderr.strip().splitlines()[-1]
        assert "No space left on device" in message and "tiny" in message, serve.stderr
        assert run_cli("status", "--json").returncode == 0
        busy = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        assert not busy.stdout.strip(), f"a server was left on port {port}"


# -- the clock -------------------------------------------------------------------------------


def test_a_clock_jump_does_not_bend_uptimes_or_rates(llama_server, tiny_gguf, isolated_dirs,
                                                     monkeypatch):  # fmt: skip
    """NTP stepping the clock by hours (or a VM resumed) must not make a server's uptime
    negative or its rates absurd: they come from /proc/uptime and the monotonic clock."""
    from conftest import free_port

    from sparktop.config import load_config
    from sparktop.control import Control

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    try:
        with Control.from_config(load_config()) as control, monkeypatch.context() as clock:
            (before,) = control.poll({})
            real = time.time
            clock.setattr(time, "time", lambda: real() - 6 * 3600)  # back six hours
            (back,) = control.poll({})
            clock.setattr(time, "time", lambda: real() + 2 * 86400)  # two days ahead
            (ahead,) = control.poll({})
        for server in (back, ahead):
            assert server.health == "ready"
            assert before.uptime_s <= server.uptime_s < before.uptime_s + 30
    finally:
        assert run_cli("stop", "tiny", timeout=60).returncode == 0


def test_sqlite_results_survive_a_corrupt_file_next_to_them(isolated_dirs):
    """A damaged bench database is set aside whole: its bytes stay for recovery tools."""
    from sparktop.bench.store import ResultStore

    data = isolated_dirs["data"]
    data.mkdir(parents=True)
    (data / "bench.sqlite3").write_bytes(b"garbage" * 100)
    store = ResultStore()
    assert store.problem and "bench.sqlite3" in store.problem
    store.add(model="m", kind="api", decode_tps=10.0, hardware="test")
    assert [r["model"] for r in store.history()] == ["m"]
    (kept,) = data.glob("bench.sqlite3.damaged-*")
    assert kept.read_bytes() == b"garbage" * 100
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(kept).execute("SELECT 1 FROM runs").fetchall()


# -- its own log and a long run --------------------------------------------------------------


def test_the_log_rotates_and_debug_adds_detail(isolated_dirs, monkeypatch):
    state = isolated_dirs["state"]
    assert run_cli("status").returncode == 0
    log = (state / "sparktop.log").read_text()
    assert "DEBUG" not in log
    assert run_cli("--debug", "status").returncode == 0
    assert "DEBUG sparktop: sparktop 0.1.0: status" in (state / "sparktop.log").read_text()

    monkeypatch.setattr(logs, "MAX_BYTES", 4096)
    logs.setup(directory=state)
    try:
        for n in range(400):
            logs.LOGGER.warning("warning number %d from a long night", n)
    finally:
        logs.shutdown()
    names = sorted(p.name for p in state.glob("sparktop.log*"))
    assert names == ["sparktop.log", "sparktop.log.1", "sparktop.log.2", "sparktop.log.3"]
    assert all(p.stat().st_size <= 4096 for p in state.glob("sparktop.log*"))
    assert "warning number 399" in (state / "sparktop.log").read_text()


def test_a_soak_at_a_fast_refresh_keeps_memory_flat(llama_server):
    """2,000 refreshes with 4 live servers polled every 20 ms (tests/bench/soak.py runs
    20,000 for the figures in docs/benchmarks.md); a leak of a few KiB per refresh fails."""
    soak = Path(__file__).parent / "bench" / "soak.py"
    done = subprocess.run(
        [sys.executable, str(soak), "--refreshes", "2000", "--every", "500", "--json"],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refreshes"] >= 2000 and result["servers_shown"] == 4
    assert result["server_polls"] >= 100
    assert result["growth_mib"] <= 5.0, result
