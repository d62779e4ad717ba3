"""`sparktop download` with the real huggingface_hub client against a loopback Hub."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, wait_for
from fake_hub import FakeHub, client_env

REPO = "unsloth/Tiny-GGUF"
SHARD1 = "UD-Q2_K_XL/Tiny-UD-Q2_K_XL-00001-of-00002.gguf"
SHARD2 = "UD-Q2_K_XL/Tiny-UD-Q2_K_XL-00002-of-00002.gguf"


@pytest.fixture
def hub():
    with FakeHub() as hub:
        hub.unsloth_layout(REPO, size_mb=2)
        yield hub


@pytest.fixture
def env(hub, tmp_path):
    return dict(os.environ) | client_env(hub, tmp_path / "hf-home")


def download(env, local_dir: Path, *extra: str, timeout: float = 60):
    return run_cli(
        "download", REPO, "--include", "UD-Q2_K_XL/*", "--local-dir", str(local_dir), *extra,
        env=env, timeout=timeout,
    )  # fmt: skip


def kill_mid_download(hub, env, target: Path) -> int:
    """Start `sparktop download` slowly, SIGKILL it mid-file; return the bytes it kept."""
    hub.throttle_bytes_per_s = 400_000
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparktop", "download", REPO, "--include", "UD-Q2_K_XL/*",
         "--local-dir", str(target), "--parallel", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    partial = target / ".cache/huggingface/download" / (SHARD1 + ".sparktop.incomplete")
    wait_for(lambda: partial.exists() and partial.stat().st_size > 300_000, timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    hub.throttle_bytes_per_s = None
    time.sleep(0.5)  # let the server notice the dead client before counting afresh
    hub.reset_counters()
    return partial.stat().st_size


def test_include_patterns_pick_the_right_files_and_bytes_match(hub, env, tmp_path):
    target = tmp_path / "models" / "tiny"
    result = download(env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(
        p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()
        and ".cache" not in p.parts
    )  # fmt: skip
    assert files == [SHARD1, SHARD2]
    for path in files:
        assert (target / path).read_bytes() == hub.content(REPO, path)
    assert "2 files" in result.stdout and "verified (size and sha256)" in result.stdout


def test_progress_is_monotonic_and_ends_at_100(hub, env, tmp_path):
    hub.throttle_bytes_per_s = 1_000_000  # ~3 s for the two shards
    result = download(env, tmp_path / "m")
    assert result.returncode == 0, result.stderr
    percents = [float(p) for p in re.findall(r"(\d+\.\d)% ", result.stdout)]
    assert len(percents) >= 3, result.stdout
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert re.search(r"\d+(\.\d+)? [KM]iB/s", result.stdout), "a speed is shown while running"


def test_killed_download_resumes_without_resending_bytes(hub, env, tmp_path):
    target = tmp_path / "m"
    kept = kill_mid_download(hub, env, target)
    assert 0 < kept < hub.file(REPO, SHARD1).size, "the partial file stays after a kill"

    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert status["downloads"][-1]["state"] == "interrupted"

    result = download(env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    size = hub.file(REPO, SHARD1).size
    assert hub.bytes_sent_by_path[SHARD1] == size - kept, "only the missing bytes are sent"
    ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith(SHARD1)]
    assert ranges == [f"bytes={kept}-"]
    assert (target / SHARD1).read_bytes() == hub.content(REPO, SHARD1)
    records = json.loads(run_cli("status", "--json", env=env).stdout)["downloads"]
    assert [r["state"] for r in records] == ["done"], "the resumed run took over its record"


def test_a_dropped_connection_resumes_within_the_run(hub, env, tmp_path):
    hub.drop_after(SHARD1, 700_000)
    result = download(env, tmp_path / "m")
    assert result.returncode == 0, result.stdout + result.stderr
    from sparktop.downloads.transfer import CHUNK_BYTES

    ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith(SHARD1)]
    assert ranges[0] is None and len(ranges) == 2
    # the client resumes from what it wrote: whole chunks before the cut
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 700_000 - CHUNK_BYTES < resumed_at <= 700_000
    resent = hub.bytes_sent_by_path[SHARD1] - hub.file(REPO, SHARD1).size
    assert resent == 700_000 - resumed_at < CHUNK_BYTES
    assert (tmp_path / "m" / SHARD1).read_bytes() == hub.content(REPO, SHARD1)


def test_corrupt_bytes_are_caught_and_not_handed_to_serve(hub, env, tmp_path, isolated_dirs):
    from conftest import write_user_catalog

    hub.corrupt(SHARD2)
    target = tmp_path / "m"
    result = download(env, target)
    assert result.returncode == 1
    assert "corrupt" in result.stderr and "sha256" in result.stderr and SHARD2 in result.stderr
    assert (target / SHARD1).is_file() and not (target / SHARD2).exists()
    assert (target / ".cache/huggingface/download" / (SHARD2 + ".sparktop.bad")).is_file()
    # the catalog sees one shard of two: not complete, and serve has nothing to give the engine
    write_user_catalog(
        isolated_dirs["config"],
        [{"name": "tiny", "engine": "llama.cpp", "repo": REPO, "include": ["UD-Q2_K_XL/*"],
          "local_dir": str(target), "size_gb": 0.003, "serve": {"port": 1}}],
    )  # fmt: skip
    doc = json.loads(run_cli("catalog", "--json", "tiny", env=env).stdout)
    assert doc["models"][0]["disk"]["complete"] is False


def test_not_enough_space_is_refused_with_numbers(hub, env, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        result = download(env, mount / "m")
        assert result.returncode == 1
        assert "not enough space" in result.stderr and "free" in result.stderr
        assert not any(mount.rglob("*.gguf"))
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_unknown_repo_is_one_clear_line(hub, env, tmp_path):
    result = run_cli("download", "nobody/nothing", "--local-dir", str(tmp_path), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nobody/nothing" in result.stderr and "not found" in result.stderr


@pytest.mark.parametrize("mode", ["cache", "local_dir"])
def test_a_download_started_in_another_shell_is_seen(hub, env, tmp_path, monkeypatch, mode):
    from fake_hub import Generated

    from sparktop.downloads.watch import ExternalWatcher

    # huggingface_hub writes in 10 MiB chunks: a file a few chunks long shows the growth
    big = "UD-Q8_0/Tiny-UD-Q8_0.gguf"
    repo = "unsloth/Big-GGUF"
    hub.add_repo(repo, files={big: Generated(40 * 1024 * 1024)})
    hub.throttle_bytes_per_s = 8_000_000
    for key in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN_PATH"):
        monkeypatch.setenv(key, env[key])
    hf = Path(sys.executable).with_name("hf")
    argv = [str(hf), "download", repo, big]
    target = tmp_path / "by-hand"
    if mode == "local_dir":
        argv += ["--local-dir", str(target)]
    other = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        watcher = ExternalWatcher(local_dirs=lambda: [(target, repo)])
        seen = wait_for(lambda: [d for d in watcher.scan() if d.size > 0], timeout=30)
        time.sleep(1.5)
        item = next(d for d in watcher.scan() if d.file == big)
        assert item.mode == mode and item.repo == repo and item.active
        assert item.expected == hub.file(repo, big).size
        assert 0 < item.percent < 100 and item.speed_bps > 100_000 and item.eta_s is not None
        assert seen
    finally:
        other.kill()
        other.wait(timeout=10)


async def test_tui_downloads_from_the_catalog_and_cancels(hub, env, tmp_path, monkeypatch,
                                                          isolated_dirs):  # fmt: skip
    from conftest import make_app, write_user_catalog
    from test_tui_servers import wait_until

    from sparktop.ui.screens.catalog import CatalogScreen
    from sparktop.ui.screens.dialogs import ConfirmScreen
    from sparktop.ui.widgets.downloads_panel import DownloadsTable

    for key in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN_PATH"):
        monkeypatch.setenv(key, env[key])
    target = tmp_path / "models" / "tiny"
    write_user_catalog(
        isolated_dirs["config"],
        [{"name": "tiny-q2", "engine": "llama.cpp", "repo": REPO, "include": ["UD-Q2_K_XL/*"],
          "local_dir": str(target), "size_gb": 0.003, "serve": {"port": 1}}],
    )  # fmt: skip
    hub.throttle_bytes_per_s = 300_000
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        table = app.screen.query_one("#catalog-table")
        table.move_cursor(row=table.get_row_index("tiny-q2"))
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        assert "2 files" in app.screen.question and "free on that disk" in app.screen.question
        await pilot.press("y")
        await pilot.press("escape")
        downloads = app.query_one(DownloadsTable)
        await wait_until(pilot, lambda: downloads.row_count >= 1 and any(
            "downloading" in str(downloads.get_row_at(i)[1]) for i in range(downloads.row_count)
        ), timeout=20)  # fmt: skip
        assert str(downloads.get_row_at(0)[0]) == REPO
        await wait_until(pilot, lambda: app.downloads.jobs[0].done_bytes > 0, timeout=20)
        downloads.focus()
        downloads.move_cursor(row=0)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.downloads.jobs[0].state == "cancelled", timeout=20)
        await pilot.pause(0.5)
        assert str(downloads.get_row_at(0)[1]) == "cancelled"
        partials = list((target / ".cache").rglob("*.sparktop.incomplete"))
        assert partials, "cancel keeps the partial files for resume"
        await pilot.press("x")  # again, on the cancelled row: it says why nothing happens
        await pilot.pause(0.3)
        assert any("nothing to cancel" in str(n.message) for n in app._notifications)


async def test_tui_resumes_an_interrupted_download_on_start(hub, env, tmp_path, monkeypatch):
    """The file is read right after the TUI closed: the servers loop's wait, ended by that
    close, once read its wake pipe's descriptor number after it was closed and taken by this
    read, and the file came back without its first bytes (issue 15)."""
    from conftest import make_app
    from test_tui_servers import wait_until

    for key in ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN_PATH"):
        monkeypatch.setenv(key, env[key])
    target = tmp_path / "m"
    kept = kill_mid_download(hub, env, target)
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.main._downloads is not None and app.downloads.jobs
                         and app.downloads.jobs[0].state == "done", timeout=30)  # fmt: skip
        await pilot.pause(0.5)
        from sparktop.ui.widgets.downloads_panel import DownloadsTable

        table = app.query_one(DownloadsTable)
        assert str(table.get_row_at(0)[1]) == "done"
    assert hub.bytes_sent_by_path[SHARD1] == hub.file(REPO, SHARD1).size - kept
    assert (target / SHARD1).read_bytes() == hub.content(REPO, SHARD1)


def test_a_hub_that_never_answers_is_one_line_naming_it(env, tmp_path):
    """A socket that accepts and never answers: the wait is bounded (HF_HUB_ETAG_TIMEOUT), the
    user is told what it waits on, and the partial file already there stays."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts connections; nobody ever reads or answers
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    target = tmp_path / "m"
    part = target / ".cache/huggingface/download" / (SHARD1 + ".sparktop.incomplete")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)
    try:
        result = download(env | {"HF_ENDPOINT": endpoint, "HF_HUB_ETAG_TIMEOUT": "2"}, target,
                          timeout=40)  # fmt: skip
    finally:
        silent.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"asking the Hub at {endpoint} for the files of {REPO}")
    error = result.stderr.strip()
    assert error.count("\n") == 0 and error.startswith("sparktop: error: the Hub at")
    assert endpoint in error and "did not answer within 2 s" in error
    assert part.read_bytes() == b"x" * 1000, "the partial file stays"


def left_partial(hub: FakeHub, target: Path) -> tuple[str, Any, int]:
    """A 6 MiB file of unsloth/Big-GGUF, 5 MiB of it left in `target` by an earlier run (a
    partial file of this version, as a killed download leaves it): its path, the Hub's file
    and the bytes kept."""
    from sparktop.downloads import partial

    path = "Q8_0/Big-Q8_0.gguf"
    hub.add_repo("unsloth/Big-GGUF", files={path: 6 * 1024 * 1024})
    remote = hub.file("unsloth/Big-GGUF", path)
    kept = 5 * 1024 * 1024
    part = partial.partial_path(target, path)
    part.parent.mkdir(parents=True)
    partial.write_version(target, path, partial.Version(remote.size, remote.sha256, remote.etag))
    part.write_bytes(remote.read(0, kept))
    return path, remote, kept


def test_a_resumed_download_shows_the_speed_of_the_bytes_that_arrive(hub, env, tmp_path):
    """5 MiB of 6 already on disk, the Hub capped at 300 kB/s: the speed shown is the Hub's,
    not the bytes found on disk counted as if they had just arrived."""
    target = tmp_path / "m"
    path, remote, kept = left_partial(hub, target)
    hub.throttle_bytes_per_s = 300_000
    result = run_cli("download", "unsloth/Big-GGUF", "--local-dir", str(target), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hub.bytes_sent_by_path[path] == remote.size - kept, "it resumed"
    speeds = [
        float(n) * {"B": 1, "KiB": 1024, "MiB": 1024**2}[unit]
        for n, unit in re.findall(r"(\d+(?:\.\d+)?) (B|KiB|MiB)/s", result.stdout)
    ]
    assert len([s for s in speeds if s > 0]) >= 2, result.stdout
    assert max(speeds) < 2 * 300_000, result.stdout


def test_resuming_and_running_again_say_what_is_here(hub, env, tmp_path):
    """The first progress line of a resumed run starts from the bytes on disk; the same
    command on a complete, verified download says so instead of 'resuming'."""
    target = tmp_path / "m"
    left_partial(hub, target)
    first = run_cli("download", "unsloth/Big-GGUF", "--local-dir", str(target), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "5.0 MiB already here: resuming." in first.stdout
    progress = [line for line in first.stdout.splitlines() if "% " in line]
    assert progress[0].startswith("unsloth/Big-GGUF:  83.3% 5.0 MiB / 6.0 MiB"), first.stdout

    again = run_cli("download", "unsloth/Big-GGUF", "--local-dir", str(target), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already here: resuming" not in again.stdout
    assert "already complete here and verified (size and sha256)" in again.stdout
    assert "done: 1 file verified" in again.stdout


@pytest.mark.parametrize("parallel", ["0", "65", "-3"])
def test_parallel_out_of_bounds_is_refused(hub, env, tmp_path, parallel):
    result = download(env, tmp_path / "m", "--parallel", parallel)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sparktop: error: --parallel must be 1 to 64 files at once, got {parallel}"
    )
    assert not hub.requests, "refused before asking the Hub"
