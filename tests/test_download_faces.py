"""One download, both faces: `sparktop download` (the CLI) and `Downloads.start` (what the TUI
calls) end the same way, into a loopback Hub with the real huggingface_hub client.

Each case runs the CLI face and the TUI's action into two directories and compares the
outcomes and the records in downloads.json: success, a corrupt file, an error while
verifying, and Ctrl-C against the TUI's cancel.
"""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_downloads
from conftest import run_cli, wait_for
from fake_hub import FakeHub, point_client_at
from test_downloads import REPO, SHARD1, SHARD2

from sparktop.actions import downloads as action
from sparktop.downloads.records import DownloadStore

hub, env = test_downloads.hub, test_downloads.env
"""The loopback Hub with an Unsloth-like repo, and the CLI's environment pointed at it."""
INCLUDE = "UD-Q2_K_XL/*"
META = Path(".cache/huggingface/download")
DIR = "<DIR>"


@pytest.fixture
def client(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's huggingface_hub pointed at the fake Hub (for the TUI's action)."""
    from huggingface_hub.utils import _http

    point_client_at(hub, tmp_path / "hf-home", monkeypatch)
    yield
    _http.close_session()  # pooled keep-alive connections to a server about to stop


def cli(env: dict[str, str], target: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("download", REPO, "--include", INCLUDE, "--local-dir", str(target), env=env)


def tui(target: Path) -> action.DownloadOutcome:
    """What the TUI does after its confirm dialog: plan, start, and (here) wait for the end."""
    downloads = action.Downloads()
    job = downloads.start(action.plan(REPO, [INCLUDE], local_dir=target), [INCLUDE])
    assert job.ended.wait(60), "the job ends"
    outcome = downloads.outcome(job.id)
    assert outcome is not None
    return outcome


def record(target: Path) -> dict[str, Any]:
    """The last record in downloads.json for downloads into `target`."""
    return [r for r in DownloadStore().load() if r["local_dir"] == str(target)][-1]


def same_shape(target: Path, *, with_bytes: bool = True) -> dict[str, Any]:
    """The record without what differs between two runs (ids, times, the directory)."""
    found = record(target)

    def clean(text: str | None) -> str | None:
        return text.replace(str(target), DIR) if text else text

    return {
        "state": found["state"],
        "error": clean(found["error"]),
        "total_bytes": found["total_bytes"],
        "done_bytes": found["done_bytes"] if with_bytes else None,
        "files": [
            (f["path"], f["state"], clean(f["error"]), f["done_bytes"] if with_bytes else None)
            for f in found["files"]
        ],
    }


def partial_bytes(target: Path) -> int:
    return sum(p.stat().st_size for p in (target / META).rglob("*.sparktop.incomplete"))


def test_success_is_the_same_from_both_faces(hub, env, client, tmp_path):
    by_cli, by_tui = tmp_path / "cli", tmp_path / "tui"
    # what the TUI's confirm dialog shows is what the CLI prints before starting
    asked = action.confirm_lines(action.plan(REPO, [INCLUDE], local_dir=by_cli))
    result = cli(env, by_cli)
    assert result.returncode == 0, result.stdout + result.stderr
    asking, plan_lines = result.stdout.split("\n", 1)  # what it waits on, then the plan
    assert asking.startswith(f"asking the Hub at {hub.endpoint} for the files of {REPO}@main")
    assert plan_lines.startswith("\n".join(asked[:-1]))  # the free space moves
    outcome = tui(by_tui)
    assert outcome.state == "done" and outcome.exit_code == 0
    assert [(f.path, f.state, f.error) for f in outcome.files] == [
        (SHARD1, "done", None),
        (SHARD2, "done", None),
    ]
    assert outcome.message == f"done: 2 files verified (size and sha256) in {by_tui}"
    assert outcome.message.replace(str(by_tui), str(by_cli)) in result.stdout
    assert same_shape(by_cli) == same_shape(by_tui)
    assert same_shape(by_tui)["state"] == "done"
    for path in (SHARD1, SHARD2):
        truth = hub.content(REPO, path)
        assert (by_cli / path).read_bytes() == (by_tui / path).read_bytes() == truth


def test_a_corrupt_file_is_the_same_from_both_faces(hub, env, client, tmp_path):
    hub.corrupt(SHARD2)
    by_cli, by_tui = tmp_path / "cli", tmp_path / "tui"
    result = cli(env, by_cli)
    outcome = tui(by_tui)
    assert result.returncode == outcome.exit_code == 1
    assert outcome.state == "corrupt"
    bad = next(f for f in outcome.files if f.state == "corrupt")
    assert bad.path == SHARD2 and bad.error is not None and bad.error.startswith("sha256 ")
    message = outcome.message.replace(str(by_tui), str(by_cli))
    assert result.stderr.splitlines()[-1] == f"sparktop: error: {message}"
    assert f"{SHARD2}: {bad.error}" in message, "the same per-file reason"
    assert same_shape(by_cli) == same_shape(by_tui)
    for target in (by_cli, by_tui):
        assert (target / SHARD1).is_file() and not (target / SHARD2).exists()
        assert (target / META / (SHARD2 + ".sparktop.bad")).is_file(), "bad bytes kept aside"


def test_an_error_while_verifying_fails_the_file_from_both_faces(hub, env, client, tmp_path):
    """A real condition that root hits too: a directory where the verified file must go."""
    by_cli, by_tui = tmp_path / "cli", tmp_path / "tui"
    for target in (by_cli, by_tui):
        (target / SHARD2).mkdir(parents=True)
        (target / SHARD2 / "keep").write_text("not the model")
    result = cli(env, by_cli)
    outcome = tui(by_tui)
    assert result.returncode == outcome.exit_code == 1
    assert "Traceback" not in result.stderr and "None" not in result.stderr
    assert outcome.state == "failed"
    failed = next(f for f in outcome.files if f.state == "failed")
    assert failed.path == SHARD2 and failed.error is not None
    assert failed.error.startswith("failed while verifying: IsADirectoryError: ")
    assert "\n" not in outcome.message
    message = outcome.message.replace(str(by_tui), str(by_cli))
    assert result.stderr.splitlines()[-1] == f"sparktop: error: {message}"
    assert same_shape(by_cli) == same_shape(by_tui)
    assert [f[1] for f in same_shape(by_tui)["files"]] == ["done", "failed"]


def test_an_error_inside_the_sha256_check_is_a_failed_file(client, tmp_path, monkeypatch, capsys):
    """The sha256 check itself raises (an I/O error): in-process for both faces."""
    from sparktop.cli import main
    from sparktop.downloads import verify

    def broken(*args: object) -> str:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(verify, "verdict", broken)
    by_cli, by_tui = tmp_path / "cli", tmp_path / "tui"
    code = main(["download", REPO, "--include", INCLUDE, "--local-dir", str(by_cli)])
    captured = capsys.readouterr()
    outcome = tui(by_tui)
    assert code == outcome.exit_code == 1
    assert "Traceback" not in captured.err
    assert outcome.state == "failed"
    assert {f.state for f in outcome.files} == {"failed"}
    assert all(f.error and f.error.startswith("failed while verifying: OSError: [Errno 5]")
               for f in outcome.files)  # fmt: skip
    message = outcome.message.replace(str(by_tui), str(by_cli))
    assert captured.err.splitlines()[-1] == f"sparktop: error: {message}"
    assert same_shape(by_cli) == same_shape(by_tui)
    for target in (by_cli, by_tui):
        assert not (target / SHARD1).exists(), "an unchecked file is not handed to serve"
        assert partial_bytes(target) == hub_size(target), "the bytes stay for the next try"


def hub_size(target: Path) -> int:
    return sum(f["size"] for f in record(target)["files"])


def _default_sigint() -> None:
    """A child started from a shell's background job inherits SIGINT ignored; Python only
    turns SIGINT into KeyboardInterrupt when it starts with the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_the_cli_and_cancel_in_the_tui_end_the_same(hub, env, client, tmp_path):
    hub.throttle_bytes_per_s = 300_000  # ~7 s for the two shards
    by_cli, by_tui = tmp_path / "cli", tmp_path / "tui"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparktop", "download", REPO, "--include", INCLUDE,
         "--local-dir", str(by_cli)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        wait_for(lambda: partial_bytes(by_cli) > 200_000, timeout=30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == action.CANCELLED_MESSAGE
    assert record(by_cli)["state"] == "cancelled"
    kept = partial_bytes(by_cli)
    assert 0 < kept < hub_size(by_cli), "the partial files stay"

    downloads = action.Downloads()
    job = downloads.start(action.plan(REPO, [INCLUDE], local_dir=by_tui), [INCLUDE])
    wait_for(lambda: partial_bytes(by_tui) > 200_000, timeout=30)
    assert downloads.cancel(job.id)
    assert job.ended.wait(30)
    outcome = downloads.outcome(job.id)
    assert outcome is not None and outcome.state == "cancelled" and outcome.exit_code == 130
    assert outcome.message == err.splitlines()[-1]
    assert 0 < partial_bytes(by_tui) < hub_size(by_tui)
    assert same_shape(by_cli, with_bytes=False) == same_shape(by_tui, with_bytes=False)
    assert same_shape(by_tui, with_bytes=False)["files"] == [
        (SHARD1, "cancelled", None, None),
        (SHARD2, "cancelled", None, None),
    ]

    hub.throttle_bytes_per_s = None  # the same command again resumes and finishes
    again = cli(env, by_cli)
    assert again.returncode == 0, again.stdout + again.stderr
    assert record(by_cli)["state"] == "done"


def test_a_second_ctrl_c_stops_waiting_and_still_records_cancelled(hub, env, tmp_path):
    """On a slow link a cancel is noticed only when the next bytes arrive (seconds apart):
    the first Ctrl-C says so, the second ends the process at once with the record
    *cancelled*."""
    hub.throttle_bytes_per_s = 500  # the hub sends 4 KiB pieces: ~8 s apart
    target = tmp_path / "slow"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparktop", "download", REPO, "--include", INCLUDE,
         "--local-dir", str(target)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        wait_for(lambda: any(m == "GET" and "/resolve/" in p for m, p, _ in hub.requests))
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert time.monotonic() - asked < 8, "no wait for the chunk in flight"
    assert proc.returncode == 130, out + err
    assert f"{action.CANCELLING} (Ctrl-C again: stop now)" in err and "Traceback" not in err
    assert err.splitlines()[-1] == action.CANCELLED_MESSAGE
    assert record(target)["state"] == "cancelled"
