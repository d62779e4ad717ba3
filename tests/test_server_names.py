"""One name, several servers; serving what already serves; export and download of what
sparktop did not start or cannot fetch. Real llama-servers, through the CLI as a user runs it
and through the action layer both faces call."""

from __future__ import annotations

import json

import pytest
from conftest import free_port, run_cli, start_outside, tiny_entry, wait_for, write_user_catalog
from test_servers_cli import port_is_free, status_json

from sparktop.actions import ActionError
from sparktop.actions.errors import BAD_INPUT, AmbiguousServer
from sparktop.config import load_config
from sparktop.control import Control

pytestmark = pytest.mark.slow


def by_hand(llama_server: str, gguf, alias: str, port: int, started: list):
    """A llama-server started from a shell, not through sparktop."""
    argv = [llama_server, "-m", str(gguf), "--alias", alias, "--port", str(port), "-c", "256"]
    return start_outside(argv, started)


def ready_servers(name: str, count: int) -> list[dict]:
    """Wait until `count` servers serving `name` answer; them, by port."""

    def ready() -> list[dict] | None:
        found = [s for s in status_json()["servers"] if s["name"] == name]
        ok = len(found) == count and all(s["health"] == "ready" for s in found)
        return sorted(found, key=lambda s: s["port"]) if ok else None

    return wait_for(ready, timeout=60, interval=0.5)


def test_a_name_means_the_server_sparktop_started_for_that_entry(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    ours, theirs = free_port(), free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, ours)])
    served = run_cli("serve", "tiny", timeout=90)
    assert served.returncode == 0, served.stdout + served.stderr
    outside = by_hand(llama_server, tiny_gguf, "tiny", theirs, no_orphans)
    managed, by_shell = sorted(ready_servers("tiny", 2), key=lambda s: not s["managed"])
    assert managed["port"] == ours and by_shell["pid"] == outside.pid

    # serving it again is done at once: same server, nothing started or stopped
    again = run_cli("serve", "tiny", timeout=30)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"tiny is already serving on :{ours} (http://127.0.0.1:{ours}/v1, pid {managed['pid']})"
    )

    # a port (or a PID) picks one server whatever its name
    tested = run_cli("test", str(theirs), timeout=120)
    assert f"testing tiny at http://127.0.0.1:{theirs}" in tested.stdout
    assert "PASS  /health" in tested.stdout and "PASS  /v1/chat/completions" in tested.stdout

    stopped = run_cli("stop", "tiny", timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"pid {managed['pid']}" in stopped.stdout and port_is_free(ours)
    assert outside.poll() is None  # the one started by hand still serves
    [left] = ready_servers("tiny", 1)
    assert left["pid"] == outside.pid and left["managed"] is False


def test_two_servers_of_one_name_are_listed_and_not_touched(llama_server, tiny_gguf, no_orphans):
    ports = sorted([free_port(), free_port()])
    first, second = (by_hand(llama_server, tiny_gguf, "dup", p, no_orphans) for p in ports)
    ready_servers("dup", 2)

    for verb in (["stop", "dup", "--yes"], ["test", "dup"], ["export", "opencode", "dup"]):
        result = run_cli(*verb)
        assert result.returncode == 2, (verb, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith("sparktop: error: 'dup' matches 2 servers: ")
        for popen, port in zip((first, second), ports, strict=True):
            assert f"dup (pid {popen.pid}, port {port})" in line
        assert line.endswith("give a PID or port")
    assert first.poll() is None and second.poll() is None

    # the action layer's typed error carries the candidates for a face to offer
    from sparktop.actions.servers import resolve_server

    control = Control.from_config(load_config(None))
    with control, pytest.raises(AmbiguousServer) as raised:
        resolve_server(control, "dup")
    assert raised.value.code == BAD_INPUT
    assert {s.pid for s in raised.value.candidates} == {first.pid, second.pid}

    # export: what the running server reports, though no catalog entry describes it
    exported = run_cli("export", "opencode", str(ports[1]))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    provider = doc["provider"]["sparktop"]
    assert provider["options"]["baseURL"] == f"http://127.0.0.1:{ports[1]}/v1"
    assert provider["models"]["dup"]["limit"]["context"] == 256
    assert doc["model"] == "sparktop/dup"


def test_serve_of_a_serving_entry_is_the_same_outcome_for_both_faces(
    llama_server, tiny_gguf, isolated_dirs
):
    from sparktop.actions import servers as actions

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    with Control.from_config(load_config(None)) as control:
        entry = actions.resolve_entry(control, "tiny")
        first = actions.serve(control, actions.plan_serve(control, entry), confirmed=False)
        assert first.already is None and first.record is not None
        plan = actions.plan_serve(control, entry)
        assert actions.serve_refusal(plan) is None and actions.serve_question(plan) == []
        again = actions.serve(control, plan, confirmed=False)
        assert again.already is not None and again.already.pid == first.record.pid
        assert again.message.startswith(f"tiny is already serving on :{port}")
        stopped = actions.stop(control, actions.plan_stop(control, "tiny"), confirmed=True)
        assert stopped.ok


def test_download_of_an_entry_without_a_repo_says_so(isolated_dirs, tmp_path):
    from sparktop.actions.downloads import plan_entry

    write_user_catalog(
        isolated_dirs["config"],
        [{"name": "mine", "engine": "llama.cpp", "local_dir": str(tmp_path / "mine"),
          "serve": {"port": 30123}}],
    )  # fmt: skip
    where = tmp_path / "mine"
    expected = f"mine has no Hugging Face repo to download from (its files are read from {where})"
    control = Control.from_config(load_config(None))
    with control, pytest.raises(ActionError) as raised:  # the TUI's `d` on that entry
        plan_entry(control.catalog.get("mine"))
    assert str(raised.value) == expected
    result = run_cli("download", "mine")
    assert result.returncode == 2
    assert result.stderr == f"sparktop: error: {expected}\n"
