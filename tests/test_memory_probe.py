"""Memory figures are true on unified-memory machines and agree with /proc/meminfo."""

from __future__ import annotations

import json

from conftest import FIXTURES, load_fake_nvml, machine_env, machine_roots, run_cli

from sparktop.memview import memory_shares
from sparktop.probes.memory import parse_meminfo, read_memory
from sparktop.probes.system import MemoryHints, SystemProbe, memory_hints

GIB = 1024**3
KIB = 1024


def test_spark_meminfo_gives_used_available_cache_and_swap():
    mem = read_memory(FIXTURES / "spark" / "proc")
    assert mem.total_bytes == 125514476 * KIB
    assert mem.free_bytes == 6 * GIB
    assert mem.available_bytes == 57147392 * KIB
    assert mem.cached_bytes == (524288 + 50331648 + 1572864) * KIB  # buffers+cached+sreclaimable
    assert mem.used_bytes == mem.total_bytes - mem.free_bytes - mem.cached_bytes
    assert mem.swap_total_bytes == 16777212 * KIB
    assert mem.swap_used_bytes == (16777212 - 16252924) * KIB


def test_spark_bar_splits_used_memory_between_gpu_processes_and_the_rest(tmp_path):
    snap = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark")).collect()
    shares = {s.key: s.bytes for s in memory_shares(snap)}
    assert snap.unified
    assert shares["gpu"] == 58 * GIB  # 48 GiB llama-server + 10 GiB vLLM, from NVML
    assert shares["gpu"] + shares["other"] == snap.memory.used_bytes
    assert sum(shares.values()) == snap.memory.total_bytes


def test_large_page_cache_with_little_free_memory_suggests_drop_caches():
    snap = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark")).collect()
    assert [h.kind for h in snap.hints] == ["drop_caches"]
    assert "drop_caches" in snap.hints[0].command
    assert "50.0 GiB" in snap.hints[0].message


def test_no_hint_when_plenty_is_free():
    mem = read_memory(FIXTURES / "strix" / "proc")
    assert memory_hints(mem, MemoryHints()) == ()


def test_status_json_memory_agrees_with_the_real_proc_meminfo():
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    with open("/proc/meminfo") as handle:
        real = parse_meminfo(handle.read())
    mem = doc["memory"]
    assert mem["total_bytes"] == real["MemTotal"]
    assert mem["swap_total_bytes"] == real["SwapTotal"]
    # Live values move between the two reads; allow 64 MiB of drift.
    slack = 64 * 1024 * 1024
    assert abs(mem["available_bytes"] - real["MemAvailable"]) < slack
    cached = real["Buffers"] + real["Cached"] + real.get("SReclaimable", 0)
    assert abs(mem["cached_bytes"] - cached) < slack
    assert abs(mem["used_bytes"] - (real["MemTotal"] - real["MemFree"] - cached)) < slack


def test_unreadable_meminfo_is_reported_not_fatal(tmp_path):
    (tmp_path / "proc").mkdir()
    env = machine_env("nogpu")
    env["SPARKTOP_PROC_ROOT"] = str(tmp_path / "proc")
    result = run_cli("status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["memory"] is None
    assert "meminfo" in doc["memory_error"]
