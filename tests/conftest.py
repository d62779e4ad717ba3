"""Shared fixtures: machine-like fixture trees, the NVML stub, isolated XDG dirs."""

from __future__ import annotations

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
    return SparktopApp(probe=probe, interval=interval, **kwargs)
