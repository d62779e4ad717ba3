"""Discovery and polling: vLLM / SGLang launch forms, misbehaving servers, proxies."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, TESTS, free_port, start_outside, wait_for, write_user_catalog

from sparktop.catalog.loader import load_catalog
from sparktop.engines import classify
from sparktop.servers.info import ServerInfo
from sparktop.servers.monitor import ServerMonitor
from sparktop.servers.registry import Registry

SAMPLES = FIXTURES / "engine_samples"


def engine_launcher(tmp_path: Path, program: str, engine: str, mode: str) -> Path:
    """An executable named like the engine's own entry point (e.g. `vllm`) running the fake."""
    path = tmp_path / "bin" / program
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        f"import fake_engine\nfake_engine.main({engine!r}, {mode!r}, sys.argv[1:])\n"
    )
    path.chmod(0o755)
    return path


def engine_module(tmp_path: Path, module: str, engine: str, mode: str) -> Path:
    """A package tree so `python -m MODULE` runs the fake (the engines' `-m` launch forms)."""
    root = tmp_path / "pkgs"
    parts = module.split(".")
    directory = root
    for part in parts[:-1]:
        directory = directory / part
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").touch()
    (directory / f"{parts[-1]}.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        f"import fake_engine\nfake_engine.main({engine!r}, {mode!r}, sys.argv[1:])\n"
    )
    return root


def poll_until(monitor: ServerMonitor, predicate, timeout: float = 20.0) -> tuple[ServerInfo, ...]:
    deadline = time.monotonic() + timeout
    servers: tuple[ServerInfo, ...] = ()
    while time.monotonic() < deadline:
        servers = monitor.poll()
        if predicate(servers):
            return servers
        time.sleep(0.3)
    raise AssertionError(f"servers never matched: {servers}")


def by_port(servers: tuple[ServerInfo, ...], port: int) -> ServerInfo | None:
    return next((s for s in servers if s.port == port), None)


def test_real_launch_forms_from_the_engines_are_classified():
    examples = json.loads((SAMPLES / "cmdlines.json").read_text())
    if isinstance(examples, dict):
        examples = examples.get("examples", [])
    checked = 0
    for example in examples:
        launch = classify(example["argv"])
        role = example.get("role", "server")
        if role == "client":
            assert launch is None, example["argv"]
            continue
        if role == "child":
            # workers are never separate servers; generic multiprocessing helpers are ignored
            # (a llama.cpp router's per-model llama-server looks like any llama-server: the
            # process scan folds it into its parent router instead)
            router_child = launch is not None and launch.engine == "llama.cpp"
            assert launch is None or launch.role == "child" or router_child, example["argv"]
            continue
        assert launch is not None, example["argv"]
        assert launch.engine == example["engine"], example["argv"]
        assert launch.role == role, example["argv"]
        if role == "server" and example.get("port"):
            assert launch.port == example["port"], example["argv"]
        checked += 1
    assert checked >= 12


def test_vllm_serve_is_found_and_its_metrics_read(tmp_path, no_orphans):
    port = free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "ok")
    proc = start_outside(
        [str(launcher), "serve", "Qwen/Qwen3-Coder-Next-FP8", "--port", str(port),
         "--served-model-name", "qwen3-coder-next"],
        no_orphans,
    )  # fmt: skip
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"), timeout=1.0)
    try:
        poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "ready")
        time.sleep(1.0)
        server = by_port(monitor.poll(), port)
    finally:
        monitor.close()
    assert server is not None and server.pid == proc.pid
    assert server.engine == "vllm" and server.name == "qwen3-coder-next"
    assert server.models == ("qwen3-coder-next",) and server.context == 32768
    assert server.running == 3 and server.waiting == 1
    assert server.kv_usage == pytest.approx(0.4213)
    assert server.prompt_tps == pytest.approx(1000, rel=0.25)
    assert server.gen_tps == pytest.approx(50, rel=0.25)
    assert server.managed is False


def test_sglang_module_launch_is_found_and_its_metrics_read(tmp_path, no_orphans):
    port = free_port()
    root = engine_module(tmp_path, "sglang.launch_server", "sglang", "ok")
    start_outside(
        [sys.executable, "-m", "sglang.launch_server", "--model-path", "nvidia/Qwen3-32B-FP4",
         "--served-model-name", "qwen3-32b", "--port", str(port), "--enable-metrics"],
        no_orphans,
        cwd=root,
    )  # fmt: skip
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"))
    try:
        poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "ready")
        time.sleep(1.0)
        server = by_port(monitor.poll(), port)
    finally:
        monitor.close()
    assert server.engine == "sglang" and server.name == "qwen3-32b"
    assert server.running == 12 and server.waiting == 3
    assert server.kv_usage == pytest.approx(0.28)
    assert server.gen_tps == pytest.approx(50, rel=0.25)


def test_vllm_legacy_api_server_module_is_found(tmp_path, no_orphans):
    port = free_port()
    root = engine_module(tmp_path, "vllm.entrypoints.openai.api_server", "vllm", "loading")
    start_outside(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "m",
         "--port", str(port)],
        no_orphans,
        cwd=root,
    )  # fmt: skip
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"))
    try:
        servers = poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "loading")
    finally:
        monitor.close()
    assert by_port(servers, port).engine == "vllm"


@pytest.mark.parametrize(
    ("mode", "health", "detail"),
    [
        ("hang", "not responding", "no answer"),
        ("reset", "not responding", "reset"),
        ("garbage", "not responding", "bad"),
    ],
)
def test_misbehaving_servers_are_shown_as_states_quickly(
    tmp_path, no_orphans, mode, health, detail
):
    port = free_port()
    launcher = engine_launcher(tmp_path, "llama-server", "llama.cpp", mode)
    start_outside([str(launcher), "--port", str(port), "--alias", "odd"], no_orphans)
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"), timeout=0.5)
    try:
        wait_for(lambda: by_port(monitor.poll(), port) and by_port(monitor.poll(), port).health
                 != "starting")  # fmt: skip
        started = time.monotonic()
        server = by_port(monitor.poll(), port)
        took = time.monotonic() - started
    finally:
        monitor.close()
    assert server.health == health, server
    assert detail in server.health_detail
    assert took < 2.0, f"one poll of a {mode} server took {took:.2f} s"


TOKEN_PROXY = textwrap.dedent(
    """
    import http.client, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    host, port, upstream, token = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            if token != "-" and self.headers.get("Authorization") != "Bearer " + token:
                self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers()
                return
            c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=5)
            c.request("GET", self.path); r = c.getresponse(); body = r.read()
            self.send_response(r.status); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
    ThreadingHTTPServer((host, port), H).serve_forever()
    """
)


@pytest.mark.parametrize(
    ("bind", "token", "refuses", "open_net"),
    [("127.0.0.1", "s3cret-token", True, False), ("0.0.0.0", "-", False, True)],
)
def test_proxy_auth_is_checked_and_an_open_proxy_is_flagged(
    tmp_path, no_orphans, isolated_dirs, monkeypatch, bind, token, refuses, open_net
):
    port, proxy_port = free_port(), free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "ok")
    start_outside(
        [str(launcher), "serve", "m", "--port", str(port), "--served-model-name", "coder"],
        no_orphans,
    )
    script = tmp_path / "proxy.py"
    script.write_text(TOKEN_PROXY)
    start_outside(
        [sys.executable, str(script), bind, str(proxy_port), str(port), token], no_orphans
    )
    monkeypatch.setenv("TEST_PROXY_TOKEN", token)
    write_user_catalog(
        isolated_dirs["config"],
        [
            {
                "name": "coder",
                "engine": "vllm",
                "repo": "m",
                "serve": {
                    "served_name": "coder",
                    "port": port,
                    "proxy": {"port": proxy_port, "token_env": "TEST_PROXY_TOKEN"},
                },
            }
        ],
    )
    catalog = load_catalog()
    assert not catalog.errors
    monitor = ServerMonitor(catalog=catalog, registry=Registry(tmp_path / "state"))
    try:
        servers = poll_until(
            monitor, lambda s: (x := by_port(s, port)) and x.proxy and x.proxy.reachable
        )
    finally:
        monitor.close()
    proxy = by_port(servers, port).proxy
    assert proxy.port == proxy_port
    assert proxy.refuses_without_token is refuses
    assert proxy.open_on_network is open_net
    if refuses:
        assert proxy.token_accepted is True
    dumped = json.dumps([s.to_json() for s in servers])
    assert "s3cret-token" not in dumped, "tokens are never shown"


def test_a_server_a_script_execs_into_is_found(tmp_path, no_orphans):
    """`bash serve.sh` that sets things up, then `exec vllm serve …`: same PID, new program."""
    port = free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "ok")
    script = tmp_path / "serve.sh"
    script.write_text(
        f"#!/bin/sh\nsleep 1.5\nexec {launcher} serve Qwen/Qwen3-Coder-Next-FP8 "
        f"--port {port} --served-model-name from-script\n"
    )
    script.chmod(0o755)
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"), timeout=1.0)
    try:
        proc = start_outside(["/bin/sh", str(script)], no_orphans)
        assert by_port(monitor.poll(), port) is None  # still the shell: no server yet
        servers = poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "ready")
    finally:
        monitor.close()
    server = by_port(servers, port)
    assert server is not None and server.pid == proc.pid and server.name == "from-script"


def test_a_ready_llama_server_is_polled_with_one_request_and_a_hang_is_still_seen(
    tmp_path, no_orphans, llama_server, tiny_gguf, monkeypatch
):
    import os
    import signal

    from sparktop.servers import http

    port = free_port()
    argv = [llama_server, "-m", str(tiny_gguf), "--port", str(port), "--metrics", "-c", "256"]
    server = start_outside(argv, no_orphans)
    asked: list[str] = []
    original = http.Connection.get

    def recording(self, path, **kwargs):
        asked.append(path)
        return original(self, path, **kwargs)

    monkeypatch.setattr(http.Connection, "get", recording)
    monitor = ServerMonitor(registry=Registry(tmp_path / "state"), timeout=0.5)
    try:
        poll_until(monitor, lambda s: (x := by_port(s, port)) is not None and x.health == "ready")
        monitor.poll()  # models, props and slots are asked now and then, not every poll
        asked.clear()
        ready = by_port(monitor.poll(), port)
        assert ready.health == "ready" and ready.running == 0, ready
        assert asked == ["/metrics"]  # its 200 says what /health would

        os.kill(server.pid, signal.SIGSTOP)  # hung: accepts, never answers
        try:
            started = time.monotonic()
            hung = by_port(monitor.poll(), port)
            took = time.monotonic() - started
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert hung.health == "not responding", hung
        # /metrics unanswered, then /health (a busy server may be late only with /metrics)
        assert took < 1.6, f"a hung server cost {took:.2f} s (two 0.5 s timeouts expected)"
        again = poll_until(monitor, lambda s: by_port(s, port).health == "ready")
        assert by_port(again, port).health == "ready"
    finally:
        monitor.close()


def test_a_record_of_an_earlier_process_with_the_same_pid_claims_nothing(tmp_path, no_orphans):
    """sparktop's record of a server that ended names a PID the kernel has since given to a
    server the user started by hand: that server is not sparktop's (no stop without asking,
    no group signal), because the record's start time is not the process's."""
    from sparktop.servers.procscan import read_stat
    from sparktop.servers.registry import ManagedServer

    port = free_port()
    launcher = engine_launcher(tmp_path, "vllm", "vllm", "ok")
    proc = start_outside(
        [str(launcher), "serve", "m", "--port", str(port), "--served-model-name", "mine"],
        no_orphans,
    )
    stat = read_stat(Path("/proc"), proc.pid)
    assert stat is not None
    registry = Registry(tmp_path / "state")
    registry.add(
        ManagedServer(name="old", served_name="old", engine="vllm", pid=proc.pid,
                      pgid=proc.pid, start_ticks=stat.start_ticks - 100, host="127.0.0.1",
                      port=port, argv=["vllm", "serve", "old"],
                      log_path=str(tmp_path / "old.log"))
    )  # fmt: skip
    monitor = ServerMonitor(registry=registry, timeout=1.0)
    try:
        servers = poll_until(monitor, lambda s: (x := by_port(s, port)) and x.health == "ready")
    finally:
        monitor.close()
        registry.remove(proc.pid)  # the stale record is the test's own make-believe
    server = by_port(servers, port)
    assert server is not None and server.pid == proc.pid
    assert server.managed is False and server.name == "mine"
