"""Split serving with llama.cpp's own RPC: real `ggml-rpc-server` workers on loopback ports,
a real `llama-server --rpc` serving the tiny model, stop tearing it all down."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import _alive, free_port, run_cli, start_outside, tiny_entry, wait_for
from conftest import write_user_catalog as write_catalog

from sparktop.catalog.entry import GB, ModelEntry, RpcSpec, RpcWorker, ServeProfile
from sparktop.catalog.fit import GIB, check_fit
from sparktop.catalog.loader import load_catalog
from sparktop.engines import llama_rpc as rpc
from sparktop.servers import http
from sparktop.servers.registry import Registry
from sparktop.servers.rpc_workers import listening_locally
from sparktop.servers.supervisor import ServeError, Supervisor


def rpc_server_path() -> str:
    path = rpc.find_rpc_server()
    if path is None:
        pytest.skip("ggml-rpc-server not installed (llama.cpp built without GGML_RPC)")
    return path


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def status_server(name: str) -> dict | None:
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return next((s for s in json.loads(result.stdout)["servers"] if s["name"] == name), None)


def split_entry(name: str, model: Path, workers: list[dict]) -> dict:
    entry = tiny_entry(name, model, free_port())
    entry["rpc"] = {"workers": workers}
    return entry


def chat(port: int, model: str) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    reply = http.request("POST", url, body=body, timeout=60)
    assert reply.status == 200, reply.error
    return reply.json()


# -- catalog ------------------------------------------------------------------------------


def test_loader_reads_rpc_workers_and_reports_errors_with_file_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent("""\
        models:
          - name: split
            engine: llama.cpp
            serve: {port: 30000}
            rpc:
              workers:
                - endpoint: 127.0.0.1:50052
                  start: true
                  args: ["-c"]
                - endpoint: 10.0.0.2:50052
                  host: box2
                  memory_gb: 120
          - name: bad-port
            engine: llama.cpp
            serve: {port: 30001}
            rpc:
              workers:
                - endpoint: 127.0.0.1:50052
                - endpoint: 127.0.0.1:70000
          - name: bad-endpoint
            engine: llama.cpp
            serve: {port: 30002}
            rpc: {workers: [{endpoint: "box 2"}]}
          - name: on-vllm
            engine: vllm
            serve: {port: 30003}
            rpc: {workers: [{endpoint: "127.0.0.1:50052"}]}
          - name: unknown-key
            engine: llama.cpp
            serve: {port: 30004}
            rpc:
              workers:
                - endpoint: 127.0.0.1:50052
                  strat: true
          - name: no-workers
            engine: llama.cpp
            serve: {port: 30005}
            rpc: {workers: []}
        """)
    )
    catalog = load_catalog([tmp_path])
    entry = catalog.get("split")
    assert entry is not None and entry.rpc is not None
    assert entry.rpc.endpoints == ("127.0.0.1:50052", "10.0.0.2:50052")
    first, second = entry.rpc.workers
    assert first.start and first.args == ("-c",) and first.host is None
    assert second.host == "box2" and second.memory_gb == 120 and not second.start
    errors = "\n".join(catalog.errors)
    assert len(catalog.errors) == 5, errors
    assert (
        f"{path}:19: model bad-port: rpc.workers[1].endpoint port must be between 1 and 65535"
        in (errors)
    )
    assert f"{path}:23: model bad-endpoint: rpc.workers[0].endpoint must be address:port" in errors
    assert f"{path}:27: model on-vllm: rpc (split serving) needs engine llama.cpp" in errors
    assert f"{path}:34: model unknown-key: unknown key rpc.workers[0].strat" in errors
    assert f"{path}:38: model no-workers: rpc.workers must be a non-empty list" in errors


# -- fit ----------------------------------------------------------------------------------


def test_fit_counts_pooled_memory_once_per_host() -> None:
    workers = (
        RpcWorker("127.0.0.1:50052", memory_gb=999),  # this machine: already counted
        RpcWorker("127.0.0.1:50053"),
        RpcWorker("10.9.9.1:50052", host="box2", memory_gb=100),
        RpcWorker("10.9.9.1:50053", host="box2", memory_gb=120),  # same box: once, not 220
        RpcWorker("10.9.9.2:50052", host="box3"),  # unknown: counted as 0
    )
    entry = ModelEntry(
        name="big",
        engine="llama.cpp",
        serve=ServeProfile(served_name="big", port=30000),
        size_bytes=200 * GB,
        rpc=RpcSpec(workers),
    )
    fit = check_fit([entry], available_bytes=100 * GIB, pool_total_bytes=128 * GIB)
    assert fit.hosts == (("this machine", 100 * GIB), ("box2", 120 * GB), ("box3", None))
    assert fit.available_bytes == 100 * GIB + 120 * GB
    assert fit.verdict == "fits"
    summary = fit.summary()
    assert "pooled over 3 hosts (this machine 100.0 GiB + box2 111.8 GiB + box3 ?)" in summary
    assert any("box3" in note and "counted as 0" in note for note in fit.notes)
    assert fit.to_json()["hosts"][1] == {"host": "box2", "available_bytes": 120 * GB}

    alone = check_fit(
        [ModelEntry(**{**entry.__dict__, "rpc": None})],
        available_bytes=100 * GIB,
        pool_total_bytes=128 * GIB,
    )
    assert alone.verdict == "does not fit" and alone.hosts == ()


# -- serving with real workers ------------------------------------------------------------


def test_split_serve_with_two_started_workers_then_stop_everything(
    llama_server, tiny_gguf, isolated_dirs
):
    rpc_server_path()
    ports = [free_port(), free_port()]
    endpoints = [f"127.0.0.1:{p}" for p in ports]
    entry = split_entry("split", tiny_gguf, [{"endpoint": e, "start": True} for e in endpoints])
    entry["serve"]["args"] += ["-lv", "4"]  # llama-server logs the devices it uses
    write_catalog(isolated_dirs["config"], [entry])

    listed = run_cli("catalog", "split")
    assert listed.returncode == 0, listed.stderr
    assert f"rpc workers: {endpoints[0]} (this machine, start)" in listed.stdout
    doc = json.loads(run_cli("catalog", "--json", "split").stdout)["models"][0]
    assert [w["endpoint"] for w in doc["rpc_workers"]] == endpoints
    assert [h["host"] for h in doc["fit"]["hosts"]] == ["this machine"]  # local: counted once

    served = run_cli("serve", "split", timeout=120)
    assert served.returncode == 0, served.stdout + served.stderr
    assert f"rpc worker {endpoints[0]}: started pid" in served.stdout
    assert "split over rpc workers" in served.stdout

    record = next(r for r in Registry(isolated_dirs["state"]).load() if r.name == "split")
    head = cmdline(record.pid)
    assert head[head.index("--rpc") + 1] == ",".join(endpoints)
    workers = record.rpc_workers
    assert [w["endpoint"] for w in workers] == endpoints and all(w["started"] for w in workers)
    worker_pids = [w["pid"] for w in workers]
    for pid, port in zip(worker_pids, ports, strict=True):
        argv = cmdline(pid)
        assert Path(argv[0]).name == "ggml-rpc-server"
        assert argv[1:] == ["-H", "127.0.0.1", "-p", str(port)]

    log = Path(record.log_path).read_text()
    for i, endpoint in enumerate(endpoints):  # the model really is split over both workers
        assert f"using device RPC{i} ({endpoint})" in log
    assert "offloaded 3/3 layers to GPU" in log

    answer = chat(entry["serve"]["port"], "split")
    assert answer["choices"][0]["message"]["content"] is not None
    assert answer["usage"]["completion_tokens"] > 0

    server = status_server("split")
    assert server is not None and server["health"] == "ready"
    shown = server["rpc_workers"]
    assert [w["endpoint"] for w in shown] == endpoints
    assert [w["pid"] for w in shown] == worker_pids
    assert all(w["listening"] is True and w["started_by_sparktop"] for w in shown)
    assert all(w["rss_bytes"] > 0 for w in shown)

    stopped = run_cli("stop", "split", timeout=90)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped rpc worker {endpoints[1]} (pid {worker_pids[1]})" in stopped.stdout
    assert not _alive(record.pid)
    assert not any(_alive(pid) for pid in worker_pids)
    assert not any(listening_locally(e) for e in endpoints)


def test_a_worker_sparktop_did_not_start_is_left_running(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    binary = rpc_server_path()
    mine, theirs = free_port(), free_port()
    outside = start_outside([binary, "-H", "127.0.0.1", "-p", str(theirs)], no_orphans)
    wait_for(lambda: listening_locally(f"127.0.0.1:{theirs}"), timeout=20)
    workers = [
        {"endpoint": f"127.0.0.1:{theirs}", "start": False},
        {"endpoint": f"127.0.0.1:{mine}", "start": True},
    ]
    entry = split_entry("split2", tiny_gguf, workers)
    write_catalog(isolated_dirs["config"], [entry])

    served = run_cli("serve", "split2", timeout=120)
    assert served.returncode == 0, served.stdout + served.stderr
    assert f"rpc worker 127.0.0.1:{theirs}: already listening" in served.stdout
    record = next(r for r in Registry(isolated_dirs["state"]).load() if r.name == "split2")
    started = [w for w in record.rpc_workers if w["started"]]
    assert [w["endpoint"] for w in started] == [f"127.0.0.1:{mine}"]
    assert chat(entry["serve"]["port"], "split2")["usage"]["completion_tokens"] > 0

    stopped = run_cli("stop", "split2", timeout=90)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not _alive(record.pid) and not _alive(started[0]["pid"])
    assert outside.poll() is None and listening_locally(f"127.0.0.1:{theirs}")


def test_a_worker_that_is_not_listening_without_start_is_refused(
    llama_server, tiny_gguf, isolated_dirs
):
    port = free_port()
    entry = split_entry("split3", tiny_gguf, [{"endpoint": f"127.0.0.1:{port}"}])
    write_catalog(isolated_dirs["config"], [entry])
    served = run_cli("serve", "split3", timeout=60)
    assert served.returncode == 1
    assert served.stderr.strip().splitlines()[-1] == (
        f"sparktop: error: rpc worker 127.0.0.1:{port} is not listening (start: false)"
    )
    assert Registry(isolated_dirs["state"]).load() == []
    assert status_server("split3") is None


def test_when_the_head_fails_the_workers_it_started_are_stopped(
    llama_server, tiny_gguf, isolated_dirs
):
    rpc_server_path()
    port = free_port()
    entry = split_entry("split4", tiny_gguf, [{"endpoint": f"127.0.0.1:{port}", "start": True}])
    entry["serve"]["args"] = ["--no-such-flag"]  # llama-server exits at once
    write_catalog(isolated_dirs["config"], [entry])
    served = run_cli("serve", "split4", timeout=60)
    assert served.returncode == 1
    assert "exited" in served.stderr
    record = next(r for r in Registry(isolated_dirs["state"]).load() if r.name == "split4")
    (worker,) = record.rpc_workers
    assert worker["started"] and not _alive(worker["pid"])
    assert not listening_locally(f"127.0.0.1:{port}")


def test_a_worker_that_dies_at_start_is_reported_with_its_log(tiny_gguf, isolated_dirs):
    rpc_server_path()
    port = free_port()
    worker = RpcWorker(f"127.0.0.1:{port}", start=True, args=("--no-such-option",))
    entry = ModelEntry("w", "llama.cpp", ServeProfile("w", free_port()), rpc=RpcSpec((worker,)))
    supervisor = Supervisor(registry=Registry(isolated_dirs["state"]), rpc_listen_timeout_s=10)
    with pytest.raises(ServeError) as caught:
        supervisor._start_rpc_workers(entry, lambda _e: None)
    message = str(caught.value)
    assert message.startswith(f"rpc worker 127.0.0.1:{port} exited with code")
    assert "before listening" in message and "log:" in message and "\n" not in message


# -- remote start path, with a local stand-in for SSH --------------------------------------


def test_remote_worker_start_and_stop_through_the_runner(tmp_path, isolated_dirs):
    """The SSH path runs the same remote argv; here the 'remote host' is this machine."""
    binary = rpc_server_path()
    calls: list[tuple[str, list[str]]] = []

    def local_runner(host: str, argv, timeout: float):
        calls.append((host, list(argv)))
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, cwd=tmp_path
        )
        return rpc.RemoteResult(done.returncode, done.stdout, done.stderr)

    port = free_port()
    worker = RpcWorker(f"127.0.0.1:{port}", host="box2", start=True, binary=binary)
    assert not rpc.is_local(worker)
    entry = ModelEntry("r", "llama.cpp", ServeProfile("r", free_port()), rpc=RpcSpec((worker,)))
    supervisor = Supervisor(
        registry=Registry(isolated_dirs["state"]), remote=local_runner, stop_timeout_s=5
    )
    events: list[str] = []
    (info,) = supervisor._start_rpc_workers(entry, lambda e: events.append(e.message))
    try:
        assert calls[0][0] == "box2" and calls[0][1][:2] == ["sh", "-c"]
        assert calls[0][1][-4:] == ["-H", "127.0.0.1", "-p", str(port)]
        assert info["remote"] and info["started"] and info["log_path"].startswith("box2:~/")
        pid = info["pid"]
        assert cmdline(pid)[0] == binary  # the PID printed is the worker itself
        assert listening_locally(worker.endpoint)
        assert any("on box2, listening" in e for e in events)
    finally:
        supervisor._stop_rpc_workers([info])
    assert calls[-1][1][-2] == str(pid)
    wait_for(lambda: not _alive(pid), timeout=10)
    assert not listening_locally(worker.endpoint)


def test_remote_worker_over_ssh_quoting_with_a_stand_in_ssh(tmp_path, isolated_dirs, monkeypatch):
    """Through sparktop.fleet.ssh: an `ssh` on PATH that runs the remote command string with
    sh, as sshd would, so argv quoting and the remote scripts are exercised for real."""
    from sparktop.fleet.hosts import Host
    from sparktop.fleet.rpc import ssh_runner

    binary = rpc_server_path()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(
        '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\ncd "$HOME" && exec sh -c "$1"\n'
    )
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path))
    port = free_port()
    worker = RpcWorker(f"127.0.0.1:{port}", host="box2", start=True, binary=binary)
    entry = ModelEntry("s", "llama.cpp", ServeProfile("s", free_port()), rpc=RpcSpec((worker,)))
    box2 = Host(name="box2", transport="ssh", ssh="me@box2")
    supervisor = Supervisor(
        registry=Registry(isolated_dirs["state"]), remote=ssh_runner((box2,)), stop_timeout_s=5
    )
    (info,) = supervisor._start_rpc_workers(entry, lambda _e: None)
    try:
        pid = info["pid"]
        assert cmdline(pid) == [binary, "-H", "127.0.0.1", "-p", str(port)]
        logs = list((tmp_path / ".local/state/sparktop/logs").glob("s-rpc-*.log"))
        assert len(logs) == 1  # its output (buffered by ggml-rpc-server) goes there
    finally:
        supervisor._stop_rpc_workers([info])
    wait_for(lambda: not _alive(pid), timeout=10)

    unknown = RpcWorker(f"127.0.0.1:{free_port()}", host="box9", start=True, binary=binary)
    entry = ModelEntry("u", "llama.cpp", ServeProfile("u", free_port()), rpc=RpcSpec((unknown,)))
    with pytest.raises(ServeError, match="cannot start it on box9: host box9 is not configured"):
        supervisor._start_rpc_workers(entry, lambda _e: None)


def test_rpc_endpoints_of_a_command_line() -> None:
    assert rpc.rpc_endpoints(["llama-server", "--rpc", "a:1,b:2"]) == ("a:1", "b:2")
    assert rpc.rpc_endpoints(["llama-server", "--rpc=a:1"]) == ("a:1",)
    assert rpc.rpc_endpoints(["llama-server"]) == ()
