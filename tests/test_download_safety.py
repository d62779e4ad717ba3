"""Downloads as safe as `hf download`: Ctrl-C, two downloads of one file, a file replaced on
the Hub between runs, Xet offered by the Hub; real `sparktop download` processes against the
loopback Hub with the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import test_downloads
from conftest import run_cli, wait_for
from fake_hub import Generated, point_client_at
from test_download_faces import _default_sigint, partial_bytes, record
from test_downloads import REPO, SHARD1, SHARD2

from sparktop.actions import downloads as action

hub, env = test_downloads.hub, test_downloads.env
INCLUDE = "UD-Q2_K_XL/*"
CANCELLED = "cancelled: partial files kept; run the same command to resume"


def start(env: dict[str, str], target: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sparktop", "download", REPO, "--include", INCLUDE,
         "--local-dir", str(target), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gets(hub, path: str) -> list[str | None]:
    """The Range headers of the GETs of one file (None: from the start)."""
    return [r for m, _, r in hub.requests_for(path, "GET")]


def test_ctrl_c_cancels_keeps_the_partial_and_the_same_command_resumes(hub, env, tmp_path):
    hub.throttle_bytes_per_s = 300_000
    target = tmp_path / "m"
    proc = start(env, target)
    wait_for(lambda: partial_bytes(target) > 200_000, timeout=30)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and err.splitlines()[-1] == CANCELLED
    assert record(target)["state"] == "cancelled"
    kept = {p: (target / ".cache/huggingface/download" / (p + ".sparktop.incomplete"))
            for p in (SHARD1, SHARD2)}  # fmt: skip
    sizes = {p: f.stat().st_size if f.exists() else 0 for p, f in kept.items()}
    assert 0 < sum(sizes.values()) < hub.file(REPO, SHARD1).size + hub.file(REPO, SHARD2).size

    hub.throttle_bytes_per_s = None
    hub.reset_counters()
    again = test_downloads.download(env, target)
    assert again.returncode == 0, again.stdout + again.stderr
    for path, size in sizes.items():
        assert gets(hub, path) == [f"bytes={size}-" if size else None], "resumed, not restarted"
        assert sha256(target / path) == hub.file(REPO, path).sha256
    assert record(target)["state"] == "done"


def test_two_downloads_into_one_folder_take_turns_per_file(hub, env, tmp_path):
    hub.throttle_bytes_per_s = 1_000_000  # ~3 s for the two shards
    target = tmp_path / "m"
    first = start(env, target)
    wait_for(lambda: partial_bytes(target) > 100_000, timeout=30)
    second = start(env, target)
    out2, err2 = finish(second)
    out1, err1 = finish(first)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    assert f"{SHARD1}: waiting for another download of this file" in err2
    assert "waiting" not in err1
    for path in (SHARD1, SHARD2):
        assert sha256(target / path) == hub.file(REPO, path).sha256
        assert hub.bytes_sent_by_path[path] == hub.file(REPO, path).size, "fetched once"
    states = [r["state"] for r in json.loads(run_cli("status", "--json", env=env).stdout)
              ["downloads"]]  # fmt: skip
    assert states == ["done", "done"]
    assert not list((target / ".cache").rglob("*.sparktop.bad")), "nothing set aside"


def test_no_wait_fails_the_busy_files_at_once_and_loses_nothing(hub, env, tmp_path):
    hub.throttle_bytes_per_s = 600_000
    target = tmp_path / "m"
    first = start(env, target)
    wait_for(lambda: partial_bytes(target) > 100_000, timeout=30)
    second = start(env, target, "--no-wait")
    out2, err2 = finish(second, timeout=20)
    assert second.returncode == 1, out2 + err2
    assert "Traceback" not in err2
    assert "another download of this file is running" in err2.splitlines()[-1]
    assert first.poll() is None, "the other download goes on"
    out1, err1 = finish(first)
    assert first.returncode == 0, out1 + err1
    for path in (SHARD1, SHARD2):
        assert sha256(target / path) == hub.file(REPO, path).sha256


def test_a_partial_of_a_replaced_file_is_discarded_before_fetching(hub, env, tmp_path):
    target = tmp_path / "m"
    kept = test_downloads.kill_mid_download(hub, env, target)
    assert kept > 0
    # the shard is re-uploaded: same name and size, other bytes
    files = {p: hub.content(REPO, p) for p in hub.repos[("model", REPO)].revisions["main"].files}
    files[SHARD1] = Generated(hub.file(REPO, SHARD1).size, seed="re-uploaded")
    hub.add_repo(REPO, files)
    result = test_downloads.download(env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{SHARD1}: partial file discarded: the file changed on the Hub since" in result.stderr
    assert "already here" not in result.stdout, "the stale bytes do not count as present"
    assert gets(hub, SHARD1) == [None], "fetched from the first byte"
    assert sha256(target / SHARD1) == hub.file(REPO, SHARD1).sha256
    assert record(target)["state"] == "done"


def test_a_partial_of_the_same_version_is_resumed_after_a_new_plan(hub, env, tmp_path):
    """The version kept beside the partial matches: nothing discarded, only the rest sent."""
    target = tmp_path / "m"
    kept = test_downloads.kill_mid_download(hub, env, target)
    result = test_downloads.download(env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "discarded" not in result.stderr
    assert gets(hub, SHARD1) == [f"bytes={kept}-"]


def test_xet_offered_hands_the_transfer_to_huggingface_hub(hub, env, tmp_path):
    """The Hub offers Xet for the LFS files: sparktop takes huggingface_hub's Xet path (it asks
    the Xet token route, never GETs the file over HTTP); the loopback Hub has no Xet storage,
    so each file fails with one line saying how to fetch over HTTP instead."""
    pytest.importorskip("hf_xet")
    hub.xet = True
    xet_env = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_XET"}
    target = tmp_path / "m"
    result = test_downloads.download(xet_env, target)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert any("/xet-read-token/" in p for m, p, _ in hub.requests if m == "GET")
    assert gets(hub, SHARD1) == gets(hub, SHARD2) == [], "no byte over plain HTTP"
    files = record(target)["files"]
    assert [(f["state"], f["via"]) for f in files] == [("failed", "xet")] * 2
    assert all(f["error"].startswith("Xet transfer: ") and "HF_HUB_DISABLE_XET=1" in f["error"]
               for f in files)  # fmt: skip
    assert not (target / SHARD1).exists()


def test_xet_offered_but_disabled_falls_back_to_http_with_resume(hub, env, tmp_path):
    hub.xet = True
    assert env["HF_HUB_DISABLE_XET"] == "1"
    target = tmp_path / "m"
    result = test_downloads.download(env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(f["state"], f["via"]) for f in record(target)["files"]] == [("done", "http")] * 2
    assert sha256(target / SHARD1) == hub.file(REPO, SHARD1).sha256


def test_a_download_leaves_huggingface_hub_settings_alone(hub, tmp_path, monkeypatch):
    """In-process (the TUI's way): the client's constants are the same after a download."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    point_client_at(hub, tmp_path / "hf-home", monkeypatch)
    before = {k: getattr(constants, k) for k in dir(constants) if k.isupper()}
    try:
        downloads = action.Downloads()
        job = downloads.start(action.plan(REPO, [INCLUDE], local_dir=tmp_path / "m"), [INCLUDE])
        assert job.ended.wait(60) and job.state == "done"
    finally:
        _http.close_session()
    assert {k: getattr(constants, k) for k in dir(constants) if k.isupper()} == before


def test_files_at_once_default_to_eight_and_are_a_setting(tmp_path):
    from sparktop.config import ConfigError, load_config

    config = tmp_path / "config.yaml"
    config.write_text("interval: 1\n")
    assert load_config(config).downloads.parallel == 8
    config.write_text("downloads:\n  parallel: 3\n")
    assert load_config(config).downloads.parallel == 3
    for bad, says in (("0", "between 1 and 64"), ("2.5", "whole number"), ("x", "a number")):
        config.write_text(f"downloads:\n  parallel: {bad}\n")
        with pytest.raises(ConfigError, match=f"config.yaml:2: downloads.parallel must be.*{says}"):
            load_config(config)
    config.write_text("downloads:\n  files: 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting downloads\.files"):
        load_config(config)


def test_the_downloads_box_says_what_a_waiting_file_waits_for():
    from sparktop.downloads.states import WAITING, WAITING_NOTE
    from sparktop.snapshot import DownloadFileInfo, DownloadInfo
    from sparktop.ui.widgets.downloads_panel import rows_for

    waiting = DownloadFileInfo(path="model.gguf", size=100, state=WAITING, note=WAITING_NOTE)
    doc = DownloadInfo(id="j1", repo="org/m", state=WAITING, files=(waiting,)).to_json()
    info = DownloadInfo.from_json(doc)  # the record as the TUI reads it back
    rows = dict(rows_for([info]))
    assert rows["j1:model.gguf"][:2] == (f"  model.gguf ({WAITING_NOTE})", WAITING)
