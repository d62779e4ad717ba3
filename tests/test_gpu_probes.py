"""GPU panels' data: GB10 (unified through NVML), a discrete GPU, Strix Halo (amdgpu
sysfs), and machines where the GPU cannot be seen."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, load_fake_nvml, machine_env, machine_roots, run_cli

from sparktop.probes import ProbeRoots
from sparktop.probes.amd import AmdProbe
from sparktop.probes.nvidia import NvidiaProbe
from sparktop.probes.system import SystemProbe

GIB = 1024**3


def test_gb10_memory_not_supported_shows_the_unified_pool():
    snap = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark")).collect()
    (gpu,) = snap.gpus
    assert gpu.name == "NVIDIA GB10"
    assert gpu.unified is True
    assert gpu.memory_source == "system+processes"
    assert gpu.memory_total_bytes == snap.memory.total_bytes
    assert gpu.memory_used_bytes == 58 * GIB
    assert gpu.utilization_percent == 37
    assert gpu.temperature_c == 61
    assert gpu.power_w == pytest.approx(45.21)
    assert gpu.power_limit_w is None  # NOT_SUPPORTED on GB10 is "unknown", not an error
    assert gpu.error is None


def test_gpu_processes_are_named_from_proc_with_their_memory():
    snap = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark")).collect()
    procs = [(p.pid, p.name, p.used_bytes) for p in snap.gpus[0].processes]
    # comm is cut to 15 bytes by the kernel; the full name comes from argv[0]
    assert procs == [(4242, "llama-server", 48 * GIB), (5151, "VLLM::EngineCore", 10 * GIB)]


def test_discrete_gpu_reports_its_own_memory_and_is_not_unified():
    snap = SystemProbe(machine_roots("discrete"), nvml=load_fake_nvml("discrete")).collect()
    (gpu,) = snap.gpus
    assert not gpu.unified and not snap.unified
    assert gpu.memory_total_bytes == 85520809984
    assert gpu.memory_used_bytes == 77309411328
    assert gpu.power_limit_w == 350
    assert snap.gpu_held_bytes == 0  # device memory is not system memory


def test_missing_nvml_library_names_the_library_and_the_device_nodes():
    snap = SystemProbe(machine_roots("nogpu"), nvml=load_fake_nvml("nogpu")).collect()
    assert snap.gpus == ()
    reason = snap.gpu_unavailable_reason
    assert "NVML library not found (libnvidia-ml.so.1)" in reason
    assert "nvidia* device nodes" in reason
    assert "no amdgpu device" in reason


def test_real_pynvml_on_this_machine_reports_why_there_is_no_gpu():
    pynvml = pytest.importorskip("pynvml")
    probe = NvidiaProbe(nvml=pynvml)
    gpus = probe.read(None)
    if gpus:
        pytest.skip("this machine has a working NVIDIA driver")
    assert probe.reason and ("NVML" in probe.reason or "driver" in probe.reason)


def test_driver_not_loaded_and_no_permission_are_told_apart():
    probe = NvidiaProbe(
        dev_root=FIXTURES / "discrete" / "dev", nvml=load_fake_nvml({"driver": False})
    )
    assert probe.read(None) == [] and probe.reason == "NVIDIA driver not loaded"
    probe = NvidiaProbe(
        dev_root=FIXTURES / "discrete" / "dev", nvml=load_fake_nvml({"init_error": "NO_PERMISSION"})
    )
    assert probe.read(None) == [] and "no permission" in probe.reason


def test_gpu_lost_mid_run_is_shown_then_recovers_after_reinit():
    scenario = json.loads((FIXTURES / "discrete" / "nvml.json").read_text())
    scenario["devices"][0]["fail_after_calls"] = {"nvmlDeviceGetName": 1}
    nvml = load_fake_nvml(scenario)
    probe = NvidiaProbe(proc_root=FIXTURES / "discrete" / "proc", nvml=nvml)
    assert probe.read(None)[0].name == "NVIDIA H100 PCIe"
    lost = probe.read(None)[0]  # second call: GPU is lost
    assert lost.name == "NVIDIA GPU" or lost.error is not None
    del scenario["devices"][0]["fail_after_calls"]
    assert probe.read(None)[0].name == "NVIDIA H100 PCIe"
    assert nvml.calls["nvmlInit"] >= 2  # it re-initialised after the loss


def test_strix_halo_shows_gtt_as_unified_gpu_memory():
    snap = SystemProbe(machine_roots("strix"), nvml=load_fake_nvml("strix")).collect()
    (gpu,) = snap.gpus
    assert gpu.vendor == "amd"
    assert gpu.name == "AMD Radeon 8060S (Strix Halo)"
    assert gpu.unified and gpu.memory_source == "gtt"
    assert gpu.memory_total_bytes == 110 * GIB
    assert gpu.memory_used_bytes == 63350767616
    assert gpu.utilization_percent == 87
    assert gpu.temperature_c == 54
    assert gpu.power_w == 78


def test_amd_card_with_large_vram_is_not_unified(tmp_path: Path):
    root = tmp_path / "m"
    shutil.copytree(FIXTURES / "strix", root, symlinks=True)
    device = root / "sys/devices/pci0000:00/0000:00:08.1/0000:c5:00.0"
    (device / "mem_info_vram_total").write_text(str(96 * GIB))  # BIOS carve-out of 96 GiB
    (device / "mem_info_gtt_total").write_text(str(15 * GIB))
    (gpu,) = AmdProbe(root / "sys").read()
    assert not gpu.unified and gpu.memory_source == "vram"
    assert gpu.memory_total_bytes == 96 * GIB


def test_sysfs_files_vanishing_leave_unknowns_not_a_crash(tmp_path: Path):
    root = tmp_path / "m"
    shutil.copytree(FIXTURES / "strix", root, symlinks=True)
    device = root / "sys/devices/pci0000:00/0000:00:08.1/0000:c5:00.0"
    for name in ("gpu_busy_percent", "mem_info_gtt_total", "mem_info_vram_total"):
        (device / name).unlink()
    shutil.rmtree(device / "hwmon")
    (gpu,) = AmdProbe(root / "sys").read()
    assert gpu.utilization_percent is None and gpu.temperature_c is None
    assert gpu.memory_total_bytes is None and "mem_info" in gpu.error


def test_container_is_named_in_the_reason(tmp_path: Path):
    root = tmp_path / "m"
    shutil.copytree(FIXTURES / "nogpu", root)
    (root / ".dockerenv").write_text("")
    snap = SystemProbe(ProbeRoots.under(root), nvml=load_fake_nvml("nogpu")).collect()
    assert "container" in snap.gpu_unavailable_reason


@pytest.mark.parametrize("machine", ["spark", "strix", "nogpu", "discrete"])
def test_status_json_schema(machine: str):
    result = run_cli("status", "--json", env=machine_env(machine))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc["memory"]) >= {
        "total_bytes",
        "available_bytes",
        "used_bytes",
        "cached_bytes",
        "swap_total_bytes",
        "swap_used_bytes",
        "unified",
    }
    for gpu in doc["gpus"]:
        assert set(gpu) >= {
            "index",
            "vendor",
            "name",
            "utilization_percent",
            "memory_total_bytes",
            "memory_used_bytes",
            "temperature_c",
            "power_w",
            "unified",
            "processes",
        }
        for proc in gpu["processes"]:
            assert set(proc) == {"pid", "name", "used_bytes"}
    if doc["gpus"]:
        assert "gpu_unavailable_reason" not in doc
    else:
        assert doc["gpu_unavailable_reason"]


def test_status_json_on_spark_has_null_where_unknown():
    doc = json.loads(run_cli("status", "--json", env=machine_env("spark")).stdout)
    gpu = doc["gpus"][0]
    assert doc["memory"]["unified"] is True and gpu["unified"] is True
    assert gpu["power_limit_w"] is None
    assert gpu["memory_used_bytes"] == 58 * GIB
    assert doc["memory"]["gpu_bytes"] == 58 * GIB
    assert [p["name"] for p in gpu["processes"]] == ["llama-server", "VLLM::EngineCore"]
