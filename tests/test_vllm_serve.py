"""A real vLLM (CPU build, from .venv-vllm) served from the catalog BY sparktop, as a user would.

One vLLM start for the module (minutes on 2 cores): `sparktop serve` switches from a llama.cpp
entry to a vLLM entry of the same exclusive group, the server outlives the CLI and a new
sparktop adopts it as its own, `sparktop bench` measures it with an exact prompt and vLLM's
own figures, and `sparktop stop` ends its whole process group. The tests run in file order
and share one set of sparktop directories (the module's, not each test's).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from conftest import _alive, free_port, run_cli, tiny_entry, wait_for, write_user_catalog
from test_servers_cli import group_alive, port_is_free
from vllm_model import VENV_PYTHON, require_vllm, write_tiny_hf_llama

from sparktop.bench.api import METRICS_DELTAS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

require_vllm()

VLLM_NAME, LLAMA_NAME, GROUP = "served-vllm", "served-llama", "one-at-a-time"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"


class Box:
    """The module's sparktop directories (config, state, data) and its two catalog entries."""

    def __init__(self, root: Path, vllm_port: int, llama_port: int) -> None:
        self.dirs = {name: root / name for name in ("config", "state", "data")}
        self.env = dict(os.environ)
        for name, path in self.dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            self.env[f"SPARKTOP_{name.upper()}_DIR"] = str(path)
        self.vllm_port, self.llama_port = vllm_port, llama_port
        self.seen: dict[str, object] = {}  # what an earlier test found, for the later ones

    def cli(self, *args: str, timeout: float = 60):
        return run_cli(*args, env=self.env, timeout=timeout)

    def server(self, name: str) -> dict | None:
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return next((s for s in json.loads(result.stdout)["servers"] if s["name"] == name), None)

    def records(self) -> list[dict]:
        try:
            return json.loads((self.dirs["state"] / "servers.json").read_text())["servers"]
        except (OSError, ValueError, KeyError):
            return []


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, llama_server, tiny_gguf):
    model = write_tiny_hf_llama(tmp_path_factory.mktemp("hf") / "tiny-llama")
    made = Box(tmp_path_factory.mktemp("sparktop"), free_port(), free_port())
    config = {"engines": {"vllm": [str(VENV_PYTHON), "-m", SERVER_MODULE]}}
    (made.dirs["config"] / "config.yaml").write_text(yaml.safe_dump(config))
    vllm_entry = {
        "name": VLLM_NAME,
        "engine": "vllm",
        "local_dir": str(model),
        "serve": {
            "served_name": VLLM_NAME, "port": made.vllm_port, "context": 2048,
            "args": ["--dtype", "bfloat16"], "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
            "exclusive": GROUP, "ready_timeout_s": 600,
        },
    }  # fmt: skip
    llama_entry = tiny_entry(LLAMA_NAME, tiny_gguf, made.llama_port, exclusive=GROUP)
    write_user_catalog(made.dirs["config"], [llama_entry, vllm_entry])
    yield made
    for record in made.records():  # a failed test must not leave a server running
        if _alive(record["pid"]):
            with contextlib.suppress(OSError):
                os.killpg(record.get("pgid", record["pid"]), signal.SIGKILL)


def test_serving_vllm_stops_the_llama_entry_of_its_group_and_shows_loading(box):
    served = box.cli("serve", LLAMA_NAME, timeout=120)
    assert served.returncode == 0, served.stdout + served.stderr
    llama = box.server(LLAMA_NAME)
    assert llama is not None and llama["health"] == "ready"

    # the fit counts what this vLLM is told (VLLM_CPU_KVCACHE_SPACE=1), not 0.9 of the pool
    fit = box.cli("catalog", VLLM_NAME, "--json")
    assert fit.returncode == 0, fit.stderr
    (need,) = json.loads(fit.stdout)["models"][0]["fit"]["needs"]
    assert need["preallocated_bytes"] is None and need["kv_cache_bytes"] == 2**30
    assert "VLLM_CPU_KVCACHE_SPACE=1" in need["kv_cache_source"]
    box.seen["estimate_bytes"] = need["total_bytes"]

    started = time.monotonic()
    switched = box.cli("serve", VLLM_NAME, "--yes", timeout=700)  # no --force: it fits
    took = time.monotonic() - started
    out = switched.stdout
    assert switched.returncode == 0, out + switched.stderr
    print(f"sparktop serve {VLLM_NAME}: ready after {took:.0f} s")
    assert f"stopping {LLAMA_NAME}" in out, out
    assert "starting: started" in out and "loading:" in out, out
    assert f"ready: {VLLM_NAME} ready on http://127.0.0.1:{box.vllm_port}" in out, out
    assert not _alive(llama["pid"]) and not group_alive(llama["pgid"])
    assert port_is_free(box.llama_port)
    box.seen["ready_after_s"] = took


def test_a_new_sparktop_adopts_the_vllm_it_started(box):
    server = box.server(VLLM_NAME)
    assert server is not None, "the served vLLM did not outlive the CLI that started it"
    assert server["managed"] is True and server["engine"] == "vllm"
    assert server["health"] == "ready" and server["port"] == box.vllm_port
    assert server["models"] == [VLLM_NAME] and server["context"] == 2048
    assert server["pgid"] == server["pid"]  # its own process group: stop reaches every child
    titles = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in server["children"]]
    assert any(b"EngineCore" in title for title in titles), titles
    assert server["rss_bytes"] > 1_000_000_000
    assert box.server(LLAMA_NAME) is None

    # the launch form fits the configured Python: `-m …api_server --model DIR`, entry env set
    argv = Path(f"/proc/{server['pid']}/cmdline").read_bytes().split(b"\0")
    assert argv[1:4] == [b"-m", SERVER_MODULE.encode(), b"--model"], argv
    environ = Path(f"/proc/{server['pid']}/environ").read_bytes().split(b"\0")
    assert b"VLLM_CPU_KVCACHE_SPACE=1" in environ
    logs = box.cli("logs", VLLM_NAME, "-n", "200")
    assert logs.returncode == 0 and "Starting vLLM" in logs.stdout, logs.stdout[-2000:]
    box.seen.update(pid=server["pid"], pgid=server["pgid"], children=server["children"],
                    rss_bytes=server["rss_bytes"])  # fmt: skip
    estimate, rss = box.seen["estimate_bytes"], server["rss_bytes"]
    print(f"vLLM tree RSS: {rss / 2**30:.2f} GiB; fit estimate {estimate / 2**30:.2f} GiB "
          f"({(estimate - rss) / rss:+.0%})")  # fmt: skip
    # the estimate errs high, never low, and not by more than half again
    assert rss <= estimate <= 1.5 * rss


def test_bench_of_the_served_vllm_is_exact_with_its_own_figures(box):
    result = box.cli("bench", VLLM_NAME, "--json", "--prompt", "128", "--gen", "32", "--reps",
                     "1", "--no-save", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["api"]
    assert run["exact_prompt"] is True and run["server_source"] == METRICS_DELTAS
    sample = run["samples"][0]
    assert sample["prompt_tokens"] == 128 and sample["generated_tokens"] == 32
    assert sample["server_decode_tps"] > 0 and sample["server_ttft_s"] > 0


def test_stop_ends_the_whole_group_and_frees_the_port(box):
    assert "pid" in box.seen, "the adoption test did not run"
    stopped = box.cli("stop", VLLM_NAME, timeout=180)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "port free" in stopped.stdout, stopped.stdout
    print(stopped.stdout.strip().splitlines()[-1])
    assert not _alive(box.seen["pid"])
    wait_for(lambda: not any(_alive(child) for child in box.seen["children"]), timeout=30)
    # the group's last helper (multiprocessing's resource tracker) ends when its pipe closes
    wait_for(lambda: not group_alive(box.seen["pgid"]), timeout=15)
    assert port_is_free(box.vllm_port)
    assert box.server(VLLM_NAME) is None
