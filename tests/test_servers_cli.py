"""Serve, discover, test and stop real llama-server processes through the CLI, as a user would."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from conftest import (
    _alive,
    free_port,
    run_cli,
    start_outside,
    tiny_entry,
    wait_for,
    write_user_catalog,
)

pytestmark = pytest.mark.slow


def status_json() -> dict:
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def server_named(name: str) -> dict | None:
    return next((s for s in status_json()["servers"] if s["name"] == name), None)


def group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_serve_test_and_stop_a_catalog_model(llama_server, tiny_gguf, isolated_dirs):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])

    served = run_cli("serve", "tiny", timeout=90)
    assert served.returncode == 0, served.stdout + served.stderr
    assert "fits" in served.stdout and "ready" in served.stdout
    assert f"http://127.0.0.1:{port}/v1" in served.stdout

    # the server outlives the CLI that started it and is re-adopted as managed
    server = server_named("tiny")
    assert server is not None
    assert server["health"] == "ready" and server["managed"] is True
    assert server["engine"] == "llama.cpp" and server["port"] == port
    assert server["models"] == ["tiny"] and server["context"] == 512
    assert server["rss_bytes"] > 0 and server["uptime_s"] >= 0
    log = Path(server["log_path"])
    assert log.is_file() and log.is_relative_to(isolated_dirs["state"])

    tested = run_cli("test", "tiny", timeout=120)
    out = tested.stdout
    assert "PASS  /health" in out and "PASS  /v1/models" in out
    assert "PASS  /v1/chat/completions" in out
    # random weights babble: the coherence check must catch it, and the verb fails
    assert "FAIL  coherence" in out and "gibberish" in out
    assert tested.returncode == 1

    logs = run_cli("logs", "tiny", "-n", "5")
    assert logs.returncode == 0 and str(log) in logs.stdout

    pid, pgid = server["pid"], server["pgid"]
    stopped = run_cli("stop", "tiny", timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "port free" in stopped.stdout
    assert not _alive(pid) and not group_alive(pgid)
    assert port_is_free(port)
    assert server_named("tiny") is None


def test_discovers_and_stops_a_server_started_outside_sparktop(llama_server, tiny_gguf, no_orphans):
    port = free_port()
    outside = start_outside(
        [
            llama_server,
            "-m",
            str(tiny_gguf),
            "--alias",
            "by-hand",
            "--port",
            str(port),
            "-c",
            "256",
        ],
        no_orphans,
    )
    server = wait_for(lambda: (s := server_named("by-hand")) and s["health"] == "ready" and s)
    assert server["pid"] == outside.pid and server["managed"] is False
    assert server["port"] == port and server["models"] == ["by-hand"]

    refused = run_cli("stop", str(port))
    assert refused.returncode != 0
    assert "not started by sparktop" in refused.stderr and "--yes" in refused.stderr
    assert outside.poll() is None

    stopped = run_cli("stop", str(outside.pid), "--yes", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert outside.wait(timeout=10) is not None
    assert port_is_free(port)


def test_stop_never_touches_a_process_that_is_not_an_inference_server(no_orphans):
    sleeper = start_outside([sys.executable, "-c", "import time; time.sleep(60)"], no_orphans)
    result = run_cli("stop", str(sleeper.pid), "--yes")
    assert result.returncode != 0
    assert "not" in result.stderr and "inference server" in result.stderr
    assert sleeper.poll() is None


def test_exclusive_group_switches_models(llama_server, tiny_gguf, isolated_dirs):
    port_a, port_b = free_port(), free_port()
    write_user_catalog(
        isolated_dirs["config"],
        [
            tiny_entry("model-a", tiny_gguf, port_a, exclusive="big"),
            tiny_entry("model-b", tiny_gguf, port_b, exclusive="big"),
        ],
    )
    assert run_cli("serve", "model-a", timeout=90).returncode == 0
    first = server_named("model-a")

    # not on a TTY and no --yes: refuse, naming what would stop
    refused = run_cli("serve", "model-b")
    assert refused.returncode != 0 and "model-a" in refused.stderr and "--yes" in refused.stderr
    assert server_named("model-a")["health"] == "ready"

    switched = run_cli("serve", "model-b", "--yes", timeout=120)
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert "stopping model-a" in switched.stdout
    names = {s["name"]: s for s in status_json()["servers"]}
    assert "model-a" not in names and names["model-b"]["health"] == "ready"
    assert not _alive(first["pid"]) and port_is_free(port_a)
    assert run_cli("stop", "model-b", timeout=60).returncode == 0


def test_serve_refuses_when_the_model_does_not_fit(isolated_dirs, tmp_path):
    """On the DGX Spark fixture (about 49 GiB available), a 120 GB model is refused."""
    from conftest import machine_env

    entry = tiny_entry("huge", tmp_path / "missing.gguf", free_port())
    entry.update(size_gb=120, files=[])
    entry["local_dir"] = str(tmp_path / "not-downloaded")
    write_user_catalog(isolated_dirs["config"], [entry])
    result = run_cli("serve", "huge", env=machine_env("spark"))
    assert result.returncode != 0
    assert "does not fit" in result.stderr and "GiB available" in result.stderr
    assert "--force" in result.stderr
    assert "needs" in result.stderr


def test_serve_refuses_a_taken_port_and_names_the_holder(llama_server, tiny_gguf, isolated_dirs):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
        result = run_cli("serve", "tiny")
        assert result.returncode != 0
        assert f"port {port} is already in use by pid {os.getpid()}" in result.stderr
        assert not json.loads(run_cli("status", "--json").stdout)["servers"]
    finally:
        holder.close()


def test_a_server_that_exits_while_loading_reports_its_log(llama_server, tmp_path, isolated_dirs):
    bad = tmp_path / "broken" / "broken.gguf"
    bad.parent.mkdir()
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    write_user_catalog(isolated_dirs["config"], [tiny_entry("broken", bad, free_port())])
    result = run_cli("serve", "broken", timeout=90)
    assert result.returncode != 0
    assert "broken exited with 1 while loading" in result.stderr
    assert "log:" in result.stderr
    crashed = server_named("broken")  # and how it ended stays in its row
    assert crashed["health"] == "crashed" and crashed["exit_cause"] == "exited with 1"
    assert "crashed: exited with 1" in run_cli("status").stdout
    # nothing left running, nothing left listening
    record = json.loads((isolated_dirs["state"] / "servers.json").read_text())["servers"][0]
    assert not _alive(record["pid"])


def test_sigkilled_server_shows_as_crashed_with_log_tail(llama_server, tiny_gguf, isolated_dirs):
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, free_port())])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    server = server_named("tiny")
    os.killpg(server["pgid"], signal.SIGKILL)
    wait_for(lambda: not _alive(server["pid"]), timeout=10)
    crashed = server_named("tiny")
    assert crashed["health"] == "crashed" and crashed["pid"] is None
    assert crashed["log_tail"], "the crash must come with the last log lines"
    # `sparktop serve` is long gone, yet how the server ended is known
    assert crashed["exit_cause"] == "killed by signal 9 (SIGKILL)"
    text = run_cli("status").stdout
    assert "crashed: killed by signal 9 (SIGKILL)" in text
    # `stop` on a crashed record clears it
    stopped = run_cli("stop", "tiny")
    assert server_named("tiny") is None, (
        stopped.stderr,
        (isolated_dirs["state"] / "servers.json").read_text(),
    )


def test_export_opencode_points_through_the_proxy(isolated_dirs):
    result = run_cli("export", "opencode", "qwen3-coder-next-q4")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    provider = doc["provider"]["sparktop"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"]["baseURL"] == "http://127.0.0.1:31000/v1"
    assert provider["options"]["apiKey"] == "{env:SPARKTOP_PROXY_TOKEN}"
    assert provider["models"]["qwen3-coder-next"]["limit"]["context"] == 131072
    assert doc["model"] == "sparktop/qwen3-coder-next"


def test_unknown_model_is_one_clear_error():
    result = run_cli("serve", "no-such-model")
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert "unknown model 'no-such-model'" in result.stderr


def test_status_json_lists_servers_key_even_when_none():
    doc = status_json()
    assert doc["servers"] == [] or all("health" in s for s in doc["servers"])


def command_entry(name: str, mode: str, port: int, **serve: object) -> dict:
    """A catalog entry of engine `command`: the fake engine, started from an argv list."""
    from conftest import TESTS

    argv = [sys.executable, str(TESTS / "fake_engine.py"), "vllm", mode,
            "--port", "{port}", "--served-model-name", "{served_name}"]  # fmt: skip
    return {"name": name, "engine": "command",
            "serve": {"port": port, "argv": argv, **serve}}  # fmt: skip


def test_a_server_not_ready_in_time_is_stopped_and_its_log_shown(isolated_dirs):
    port = free_port()
    entry = command_entry("slow", "loading", port, ready_timeout_s=2)
    write_user_catalog(isolated_dirs["config"], [entry])
    result = run_cli("serve", "slow", timeout=60)
    assert result.returncode != 0
    assert "loading (/health 503)" in result.stdout
    assert "not ready after 2 s; stopped it" in result.stderr
    assert "fake vllm listening" in result.stderr  # the log tail comes with the error
    record = json.loads((isolated_dirs["state"] / "servers.json").read_text())["servers"][0]
    assert not _alive(record["pid"]) and port_is_free(port)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(isolated_dirs):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [command_entry("stubborn", "stubborn", port)])
    (isolated_dirs["config"] / "config.yaml").write_text("servers:\n  stop_timeout: 1\n")
    assert run_cli("serve", "stubborn", timeout=60).returncode == 0
    server = server_named("stubborn")
    assert server["engine"] == "command" and server["health"] == "ready"
    stopped = run_cli("stop", "stubborn", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert "forced with SIGKILL" in stopped.stdout and "port free" in stopped.stdout
    assert not _alive(server["pid"])


@pytest.mark.parametrize("seconds", ["-5", "0", "nan"])
def test_serve_refuses_a_timeout_that_is_not_more_than_zero(seconds, tiny_gguf, isolated_dirs):
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, free_port())])
    result = run_cli("serve", "tiny", "--timeout", seconds)
    assert result.returncode == 2
    said = f"sparktop: error: --timeout must be more than 0 seconds, got {seconds}\n"
    assert result.stderr == said
    assert result.stdout == ""
    assert status_json()["servers"] == []  # nothing was started


def test_ctrl_c_while_waiting_for_ready_stops_the_server_it_started(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    import queue
    import subprocess
    import threading

    port = free_port()
    # a later --alias wins: llama-server never lists 'tiny', so the serve waits until ^C
    args = ["--parallel", "1", "--alias", "elsewhere"]
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port, args=args)])
    cli = subprocess.Popen(
        [sys.executable, "-m", "sparktop", "serve", "tiny"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    no_orphans.append(cli)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in cli.stdout], daemon=True)
    reader.start()
    wait_for(lambda: "waiting for /v1/models to list tiny" in lines.get(timeout=60), timeout=90)
    record = json.loads((isolated_dirs["state"] / "servers.json").read_text())["servers"][0]
    assert _alive(record["pid"])

    cli.send_signal(signal.SIGINT)  # the CLI alone, as a terminal's ^C would reach it
    stderr = cli.stderr.read()
    assert cli.wait(timeout=60) == 130
    said = f"sparktop: error: interrupted: stopped tiny (pid {record['pid']}) before it was ready"
    assert stderr.splitlines() == [said]
    assert not group_alive(record["pgid"]) and port_is_free(port)
    assert server_named("tiny") is None  # not left 'starting'


def test_an_unknown_name_is_exit_2_for_every_verb():
    verbs = (["serve", "nope"], ["stop", "nope"], ["test", "nope"], ["bench", "nope"],
             ["export", "opencode", "nope"], ["logs", "nope"], ["stop", "99999999"])  # fmt: skip
    for argv in verbs:
        result = run_cli(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        assert result.stderr.count("\n") == 1 and "sparktop: error: " in result.stderr, argv


def test_stop_a_misspelt_name_suggests_the_running_one(llama_server, tiny_gguf, isolated_dirs):
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, free_port())])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    for verb in ("stop", "test"):
        result = run_cli(verb, "tinyy")
        assert result.returncode == 2
        assert result.stderr == "sparktop: error: no server named 'tinyy' (did you mean tiny?)\n"
    assert server_named("tiny")["health"] == "ready"
    assert run_cli("stop", "tiny", timeout=60).returncode == 0


def test_stop_pid_of_another_program_quotes_its_command_line_by_whole_words(no_orphans):
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "--words", *["word"] * 12]
    sleeper = start_outside(argv, no_orphans)
    result = run_cli("stop", str(sleeper.pid), "--yes")
    assert result.returncode == 2
    line = result.stderr.strip()
    shown = line[line.index("(") + 1 : line.index(") is not an inference server")]
    assert shown.endswith(" …") and " ".join(argv).startswith(shown[:-2] + " ")
    assert sleeper.poll() is None
