"""sparktop in a real terminal (tmux), the way it lives on a box: SSH drops, panes die."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _alive, free_port, run_cli, tiny_entry, wait_for, write_user_catalog

from sparktop.servers.http import get

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def test_sighup_exits_cleanly_and_served_models_keep_serving(llama_server, tiny_gguf,
                                                             isolated_dirs):  # fmt: skip
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    server_pid = json.loads(run_cli("status", "--json").stdout)["servers"][0]["pid"]
    session = f"sparktop-hup-{os.getpid()}"
    env_args = []
    for key in ("SPARKTOP_CONFIG_DIR", "SPARKTOP_STATE_DIR", "SPARKTOP_DATA_DIR"):
        env_args += ["-e", f"{key}={os.environ[key]}"]
    rc_file = isolated_dirs["state"] / "rc"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", *env_args,
         f"sh -c '{sys.executable} -m sparktop; echo $? > {rc_file}; sleep 30'")  # fmt: skip
    try:
        wait_for(lambda: "tiny" in tmux("capture-pane", "-p", "-t", session), timeout=20)
        shell = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        app_pid = int(children[0])
        os.kill(app_pid, 1)  # SIGHUP, as when the SSH connection drops
        wait_for(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=10)
        assert rc_file.read_text().strip() == "0", "sparktop exits cleanly on SIGHUP"
    finally:
        tmux("kill-session", "-t", session)
    time.sleep(0.5)
    assert _alive(server_pid), "the served model must survive sparktop's hang-up"
    assert get(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
    server = json.loads(run_cli("status", "--json").stdout)["servers"][0]
    assert server["managed"] is True and server["pid"] == server_pid  # adopted again
    assert run_cli("stop", "tiny", timeout=60).returncode == 0
