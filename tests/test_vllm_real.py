"""A real vLLM (CPU build, from .venv-vllm) found, read, tested and stopped as a user would.

One server for the module: it takes minutes to start on 2 cores. It is started outside
sparktop (like a user's shell would) with the tiny random-weight Llama from vllm_model.py.
tests/tools/install_vllm.py makes .venv-vllm; without it the module is skipped, unless
SPARKTOP_REQUIRE_VLLM=1 (then it fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import _alive, free_port, run_cli, start_outside, wait_for
from test_servers_cli import group_alive, port_is_free
from vllm_model import VENV_PYTHON, require_vllm, write_tiny_hf_llama

from sparktop.bench.api import METRICS_DELTAS
from sparktop.servers.monitor import ServerMonitor
from sparktop.servers.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

require_vllm()

NAME = "tiny-vllm"
READY_TIMEOUT_S = 600


class Vllm:
    """The module's one vLLM server and what the first test saw while it loaded."""

    def __init__(self, popen: subprocess.Popen, port: int, log: Path, started: float) -> None:
        self.popen, self.port, self.log, self.started = popen, port, log, started
        self.seen: list[tuple[str, str]] = []  # (health, detail) before it was ready
        self.ready_after_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory):
    model = write_tiny_hf_llama(tmp_path_factory.mktemp("hf") / "tiny-llama")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-log") / "vllm.log"
    argv = [str(VENV_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", NAME, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "2048", "--dtype", "bfloat16"]  # fmt: skip
    # `exec` keeps the PID: the process sparktop sees is vLLM itself, its output in the log
    shell = ["/bin/sh", "-c", f'exec "$@" >{log} 2>&1', "sh", *argv]
    started: list[subprocess.Popen] = []
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    popen = start_outside(shell, started, env=env)
    server = Vllm(popen, port, log, time.monotonic())
    yield server
    if popen.poll() is None:  # the stop test failed: do not leave it running
        with contextlib.suppress(OSError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=30)


def status_server(port: int) -> dict | None:
    result = run_cli("status", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    return next((s for s in json.loads(result.stdout)["servers"] if s["port"] == port), None)


def log_tail(server: Vllm) -> str:
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-30:])


def wait_ready(server: Vllm, monitor: ServerMonitor) -> None:
    """Poll until vLLM is ready, noting each health state seen on the way."""
    if server.ready_after_s is not None:
        return
    deadline = server.started + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.popen.poll() is None, f"vLLM exited while loading:\n{log_tail(server)}"
        found = next((s for s in monitor.poll() if s.port == server.port), None)
        if found is not None:
            if found.health == "ready":
                server.ready_after_s = time.monotonic() - server.started
                print(f"vLLM ready after {server.ready_after_s:.0f} s")
                return
            if not server.seen or server.seen[-1] != (found.health, found.health_detail):
                server.seen.append((found.health, found.health_detail))
        time.sleep(0.5)
    raise AssertionError(f"vLLM not ready in {READY_TIMEOUT_S} s:\n{log_tail(server)}")


@pytest.fixture
def monitor(tmp_path: Path):
    watcher = ServerMonitor(registry=Registry(tmp_path / "monitor-state"), timeout=2.0)
    yield watcher
    watcher.close()


@pytest.fixture
def ready(vllm: Vllm, monitor: ServerMonitor) -> Vllm:
    wait_ready(vllm, monitor)
    return vllm


def test_found_while_loading_then_ready_with_its_children_folded(vllm, monitor):
    loading = wait_for(lambda: status_server(vllm.port), timeout=60, interval=0.5)
    assert loading["pid"] == vllm.popen.pid and loading["engine"] == "vllm"
    assert loading["name"] == NAME and loading["managed"] is False
    assert loading["health"] in ("starting", "loading"), loading

    wait_ready(vllm, monitor)
    assert vllm.seen, "never seen before it was ready"
    assert all(health in ("starting", "loading") for health, _ in vllm.seen), vllm.seen

    servers = [s for s in json.loads(run_cli("status", "--json").stdout)["servers"]]
    mine = [s for s in servers if s["pid"] == vllm.popen.pid]
    assert len(mine) == 1
    server = mine[0]
    assert server["health"] == "ready" and server["port"] == vllm.port
    assert server["models"] == [NAME] and server["context"] == 2048
    # EngineCore (and its worker) are folded into the one row, not servers of their own
    assert server["children"], server
    titles = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in server["children"]]
    assert any(b"EngineCore" in title for title in titles), titles
    assert not {s["pid"] for s in servers} & set(server["children"])
    assert server["rss_bytes"] > 1_000_000_000  # the whole tree, python + torch + engine


def test_models_lists_the_served_name(ready):
    reply = httpx.get(f"{ready.url}/v1/models", timeout=30)
    assert reply.status_code == 200
    assert [m["id"] for m in reply.json()["data"]] == [NAME]


def test_sparktop_test_checks_the_real_server(ready):
    tested = run_cli("test", NAME, timeout=300)
    out = tested.stdout
    assert "PASS  /health" in out and "PASS  /v1/models" in out, out + tested.stderr
    assert "PASS  /v1/chat/completions" in out, out
    # random weights babble: the coherence check says so, and the verb fails
    assert "FAIL  coherence" in out and "gibberish" in out, out
    assert tested.returncode == 1


def test_live_rates_and_running_from_real_metrics(ready, monitor):
    tokens = 1200  # each request runs for a while, so a poll sees it even on a busy box
    before = next(s for s in monitor.poll() if s.port == ready.port)
    assert before.kv_usage is not None and before.running == 0 and before.waiting == 0

    def ask() -> None:
        body = {"model": NAME, "prompt": "Count to ten:", "max_tokens": tokens,
                "ignore_eos": True, "temperature": 0}  # fmt: skip
        httpx.post(f"{ready.url}/v1/completions", json=body, timeout=300).raise_for_status()

    askers = [threading.Thread(target=ask) for _ in range(3)]  # long enough to be seen
    for asker in askers:
        asker.start()
    polls = []
    while any(a.is_alive() for a in askers):
        polls.extend(s for s in monitor.poll() if s.port == ready.port)
        time.sleep(0.1)
    for asker in askers:
        asker.join()
    after = next(s for s in monitor.poll() if s.port == ready.port)

    assert max(p.running or 0 for p in polls) >= 1, polls
    assert any((p.gen_tps or 0) > 0 for p in polls), polls
    assert after.gen_tokens_total - before.gen_tokens_total >= 3 * tokens
    assert after.prompt_tokens_total > before.prompt_tokens_total
    assert after.running == 0


def test_bench_sends_an_exact_prompt_and_shows_vllms_own_figures(ready):
    """Token ids from vLLM's /tokenize; TTFT, prefill and decode from its /metrics."""
    result = run_cli("bench", NAME, "--json", "--prompt", "256", "--gen", "128", "--reps", "3",
                     timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["api"]
    assert run["exact_prompt"] is True
    assert run["server_source"] == METRICS_DELTAS
    for sample in run["samples"]:
        assert sample["prompt_tokens"] == 256 and sample["generated_tokens"] == 128, sample
        assert sample["server_ttft_s"] > 0 and sample["server_prefill_tps"] > 0, sample
        assert sample["server_decode_tps"] > 0, sample
    figures = run["summary"]
    client, server = figures["decode_tps"]["median"], figures["server_decode_tps"]["median"]
    print(f"decode: sparktop {client:.1f} t/s, vLLM /metrics {server:.1f} t/s")
    assert abs(client - server) / server < 0.10, (client, server)

    shown = run_cli("bench", NAME, "--prompt", "64", "--gen", "16", "--reps", "1", "--no-save",
                    env={**os.environ, "COLUMNS": "200"}, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "prompt 64 tokens exact (tokenized)" in shown.stdout, shown.stdout
    assert "server: the server's /metrics, read before and after each request" in shown.stdout
    assert "TTFT" in shown.stdout and "(server: " in shown.stdout


def test_stopping_a_vllm_sparktop_did_not_start(ready):
    server = status_server(ready.port)
    assert server is not None
    pid, pgid, children = server["pid"], server["pgid"], server["children"]

    refused = run_cli("stop", str(ready.port))
    assert refused.returncode != 0
    assert "not started by sparktop" in refused.stderr and "--yes" in refused.stderr
    assert ready.popen.poll() is None

    stopped = run_cli("stop", str(pid), "--yes", timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    ready.popen.wait(timeout=30)
    wait_for(lambda: not any(_alive(child) for child in children), timeout=30)
    # the group's last helper (multiprocessing's resource tracker) ends when its pipe closes
    wait_for(lambda: not group_alive(pgid), timeout=15)
    assert port_is_free(ready.port)
    assert status_server(ready.port) is None
