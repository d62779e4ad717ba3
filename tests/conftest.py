"""Shared fixtures: machine-like fixture trees, the NVML stub, isolated XDG dirs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sparktop.probes import ProbeRoots

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
NVML_STUB_DIR = TESTS / "stubs" / "nvml"

# The suite sees only its own servers: every process it starts inherits this entry, and
# sparktop's process scan (in this process and in every sparktop the tests run) keeps only
# processes that carry it. A box serving models of its own stays out of every test.
os.environ.setdefault("SPARKTOP_TEST_RUN", f"pytest-{os.getpid()}")  # nested runs share it


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Every test gets its own config/state/data dirs; nothing touches the real home."""
    dirs = {name: tmp_path / name for name in ("config", "state", "data")}
    for name, path in dirs.items():
        monkeypatch.setenv(f"SPARKTOP_{name.upper()}_DIR", str(path))
    monkeypatch.delenv("NO_COLOR", raising=False)
    return dirs


def load_fake_nvml(scenario: str | dict | None) -> ModuleType:
    """A fresh copy of the pynvml stub answering like `scenario` (a fixture name or dict)."""
    if isinstance(scenario, str):
        scenario = json.loads((FIXTURES / scenario / "nvml.json").read_text())
    spec = importlib.util.spec_from_file_location("pynvml_fake", NVML_STUB_DIR / "pynvml.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.configure(scenario)
    return module


def machine_roots(name: str) -> ProbeRoots:
    return ProbeRoots.under(FIXTURES / name)


def machine_env(name: str) -> dict[str, str]:
    """Environment that makes a `sparktop` process see fixture machine `name`."""
    root = FIXTURES / name
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(NVML_STUB_DIR),
        SPARKTOP_FAKE_NVML=str(root / "nvml.json"),
        SPARKTOP_PROC_ROOT=str(root / "proc"),
        SPARKTOP_SYS_ROOT=str(root / "sys"),
        SPARKTOP_DEV_ROOT=str(root / "dev"),
        SPARKTOP_ROOT=str(root),
    )
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would (`python -m sparktop`), stdin/stdout piped."""
    return subprocess.run(
        [sys.executable, "-m", "sparktop", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=timeout,
        input=input if input is not None else "",
    )


def make_app(machine: str = "spark", interval: float = 3600.0, **kwargs):
    """The real app, reading fixture machine `machine` (NVML stub included).

    A long interval means one collection at start, so screens are stable to compare.
    """
    from sparktop.probes.system import SystemProbe
    from sparktop.ui.app import SparktopApp

    probe = SystemProbe(machine_roots(machine), nvml=load_fake_nvml(machine))
    kwargs.setdefault("watch_servers", False)  # screens stay comparable; server tests opt in
    return SparktopApp(probe=probe, interval=interval, **kwargs)


# -- real llama.cpp servers ----------------------------------------------------------------

REQUIRE_LLAMA = os.environ.get("SPARKTOP_REQUIRE_LLAMA") == "1"


def llama_server_path() -> str | None:
    from sparktop.engines import find_llama_server

    return find_llama_server()


@pytest.fixture(scope="session")
def llama_server() -> str:
    """Path of a real llama-server (CI installs one; locally the tests skip without it)."""
    path = llama_server_path()
    if path is None:
        message = "llama-server not installed (run tests/tools/install_llama.py)"
        if REQUIRE_LLAMA:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinymodel import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny" / "tiny-f32.gguf")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_user_catalog(config_dir: Path, models: list[dict], name: str = "test.yaml") -> Path:
    import yaml

    path = config_dir / "catalog" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


def tiny_entry(name: str, model: Path, port: int, **serve: object) -> dict:
    """A catalog entry that serves the tiny test model with the real llama-server."""
    return {
        "name": name,
        "engine": "llama.cpp",
        "local_dir": str(model.parent),
        "files": [model.name],
        "serve": {"served_name": name, "port": port, "context": 512,
                  "args": ["--parallel", "1"], "ready_timeout_s": 60, **serve},
    }  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.fixture(autouse=True)
def no_orphans(isolated_dirs: dict[str, Path]):
    """After each test: every server sparktop started must be gone; kill and fail if not."""
    started: list[subprocess.Popen] = []
    yield started
    import signal

    leftovers = []
    registry = isolated_dirs["state"] / "servers.json"
    try:
        records = json.loads(registry.read_text()).get("servers", [])
    except (OSError, ValueError, AttributeError):  # absent, or damaged on purpose by a test
        records = []
    for record in records:
        if isinstance(record, dict) and "pid" in record and _alive(record["pid"]):
            leftovers.append(record["pid"])
            with contextlib.suppress(OSError):
                os.killpg(record.get("pgid", record["pid"]), signal.SIGKILL)
    for popen in started:
        if popen.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(timeout=10)
    assert not leftovers, f"managed servers left running: {leftovers}"


def start_outside(argv: list[str], started: list[subprocess.Popen], **kwargs) -> subprocess.Popen:
    """Start a process the way a user's shell would (not through sparktop)."""
    popen = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **kwargs,
    )
    started.append(popen)
    return popen


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
