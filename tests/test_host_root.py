"""sparktop from a Talos/Kubernetes debug container: the node read through --host-root /host.

The node is a fixture tree (tests/fixtures/talos: its /proc with a pod's llama-server, the
kubelet's logs, os-release, the NVIDIA extension's library folder).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, run_cli

from sparktop.probes import ProbeRoots
from sparktop.probes.nvidia import find_nvml

NODE = FIXTURES / "talos"


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKTOP_") or
           k.endswith(("_DIR", "TEST_RUN"))}  # fmt: skip
    return {**env, "COLUMNS": "200", **extra}


def test_host_root_moves_every_probe_root(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROC", "SYS", "DEV"):
        monkeypatch.delenv(f"SPARKTOP_{name}_ROOT", raising=False)
    monkeypatch.delenv("SPARKTOP_ROOT", raising=False)
    monkeypatch.setenv("SPARKTOP_HOST_ROOT", "/host")
    roots = ProbeRoots.from_env()
    assert (roots.proc, roots.sys, roots.dev, roots.root) == (
        Path("/host/proc"), Path("/host/sys"), Path("/host/dev"), Path("/host"),
    )  # fmt: skip
    assert roots.host_root == Path("/host")
    monkeypatch.delenv("SPARKTOP_HOST_ROOT")
    assert ProbeRoots.from_env().host_root is None


def test_the_nodes_nvml_library_is_found_where_talos_puts_it() -> None:
    assert find_nvml(NODE) == NODE / "usr/local/glibc/usr/lib/libnvidia-ml.so.1"
    assert find_nvml(NODE / "etc") is None


@pytest.mark.parametrize("how", ["flag", "env"])
def test_status_reads_the_node_through_the_host_root(how: str) -> None:
    if how == "flag":
        result = run_cli("--host-root", str(NODE), "status", "--json", env=plain_env())
    else:
        result = run_cli("status", "--json", env=plain_env(SPARKTOP_HOST_ROOT=str(NODE)))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["host_root"] == str(NODE)
    (server,) = doc["servers"]
    assert server["name"] == "qwen-pod" and server["container"]["pod"] == "ai/vllm-0"
    assert doc["memory"]["total_bytes"] > 0  # the node's meminfo
    if ctypes.util.find_library("nvidia-ml") is None:  # this machine has none of its own
        library = NODE / "usr/local/glibc/usr/lib/libnvidia-ml.so.1"
        assert f"NVML failed to load from the node: {library}" in doc["gpu_unavailable_reason"]


def test_status_text_says_it_looks_through_the_host_root() -> None:
    result = run_cli("--host-root", str(NODE), "status", env=plain_env())
    assert result.returncode == 0, result.stderr
    assert f"(the node, through {NODE})" in result.stdout.splitlines()[0]


def test_a_host_root_without_proc_is_refused(tmp_path: Path) -> None:
    result = run_cli("--host-root", str(tmp_path), "status", env=plain_env())
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"sparktop: error: --host-root {tmp_path}: no {tmp_path}/proc there"
    )


def test_a_debug_container_without_host_root_is_told_to_use_it(tmp_path: Path) -> None:
    """The pod's own view: no GPU, no servers, and the node's root mounted at /host."""
    (tmp_path / "proc").mkdir()
    for name in ("meminfo", "uptime"):
        shutil.copy(NODE / "proc" / name, tmp_path / "proc" / name)
    (tmp_path / "host/proc/1").mkdir(parents=True)
    env = plain_env(
        SPARKTOP_ROOT=str(tmp_path), SPARKTOP_PROC_ROOT=str(tmp_path / "proc"),
        SPARKTOP_SYS_ROOT=str(tmp_path / "sys"), SPARKTOP_DEV_ROOT=str(tmp_path / "dev"),
    )  # fmt: skip
    doc = json.loads(run_cli("status", "--json", env=env).stdout)
    assert doc["gpus"] == [] and doc["servers"] == []
    assert doc["gpu_unavailable_reason"].endswith(
        "; the node's root is at /host: try sparktop --host-root /host"
    )
    assert "host_root" not in doc


def test_a_read_only_home_puts_state_in_a_temp_dir_with_one_warning(tmp_path: Path) -> None:
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env = {k: v for k, v in plain_env().items() if not k.startswith("XDG_")}
    for name in ("STATE", "DATA"):
        env.pop(f"SPARKTOP_{name}_DIR", None)
    env.update(HOME=str(home), TMPDIR=str(temp))
    script = (
        f'mount --bind "{home}" "{home}" && mount -o remount,ro,bind "{home}" && '
        f'exec "{sys.executable}" -m sparktop status --json'
    )
    try:
        result = subprocess.run(["unshare", "--mount", "sh", "-c", script], env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "mount" in result.stderr and result.returncode != 0:
        pytest.skip(f"cannot make a read-only home here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    base = temp / f"sparktop-{os.getuid()}"
    assert warnings == [
        f"sparktop: warning: {home} is not writable (read-only home?): "
        f"state and data go to {base} for this run"
    ]
    assert (base / "state" / "sparktop.log").is_file()
    assert not (home / ".local").exists()


async def test_the_top_bar_says_it_looks_through_the_host_root() -> None:
    from conftest import load_fake_nvml

    from sparktop.probes.system import SystemProbe
    from sparktop.ui.app import SparktopApp

    roots = ProbeRoots(proc=NODE / "proc", sys=NODE / "sys", dev=NODE / "dev", root=NODE,
                       host_root=NODE)  # fmt: skip
    probe = SystemProbe(roots, nvml=load_fake_nvml("spark"))
    app = SparktopApp(probe=probe, interval=3600.0, watch_servers=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        for _ in range(50):
            if "spark-01" in str(app.query_one("#topbar").render()):
                break
            await pilot.pause(0.05)
        assert f"spark-01 (through {NODE})" in str(app.query_one("#topbar").render())
