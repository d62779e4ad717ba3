#!/usr/bin/env python3
"""Soak: run the full-screen app headless at a fast refresh and watch its memory.

    python tests/bench/soak.py                         # 20,000 refreshes, 4 live servers
    python tests/bench/soak.py --refreshes 2000 --json # what tests/test_resilience.py runs

The app is the real one (Textual's headless driver, 160x48), reading this machine's /proc
and a GB10-like NVML stub, with the servers panel polling `--servers` loopback servers
(real llama-servers when installed, else the engine stand-in) every 0.2 s. RSS (VmRSS) is
sampled after a warm-up and every `--every` refreshes; growth = last - after warm-up.
Target (issue #6): growth <= 5 MiB over 20,000 refreshes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_servers(count: int, scratch: Path) -> list[subprocess.Popen]:
    """Loopback servers for the panel: real llama-servers if installed, else the stand-in."""
    if not count:
        return []
    from sparktop.engines import find_llama_server

    sys.path.insert(0, str(HERE))
    from llama_common import free_port, start_llama_server

    if find_llama_server():
        from tinymodel import write_tiny_llama

        model = write_tiny_llama(scratch / "tiny-f32.gguf")
        return [
            start_llama_server(model, f"soak-{i}", free_port(), "--metrics", "-c", "512")
            for i in range(count)
        ]
    procs = []
    for _ in range(count):
        port = free_port()
        argv = ["vllm", "serve", "soak-model", "--port", str(port)]
        procs.append(
            subprocess.Popen(
                [sys.executable, str(TESTS / "fake_engine.py"), "vllm", "ok", *argv],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1.0)
    return procs


async def soak(
    refreshes: int,
    every: int,
    warmup: int,
    interval: float,
    trace: bool = False,
    server_interval: float = 0.02,
) -> dict:
    from conftest import load_fake_nvml

    from sparktop.config import Config, ServerSettings
    from sparktop.probes import ProbeRoots
    from sparktop.probes.system import SystemProbe
    from sparktop.ui.app import SparktopApp

    config = Config(servers=ServerSettings(interval=server_interval, idle_interval=server_interval))
    probe = SystemProbe(ProbeRoots(), nvml=load_fake_nvml("spark"))
    app = SparktopApp(config, probe=probe, interval=interval)
    samples: list[tuple[int, float]] = []
    started = time.monotonic()
    async with app.run_test(size=(160, 48)) as pilot:
        await app.servers_ready.wait()
        while app.refreshes < warmup:
            await pilot.pause(0.05)
        if trace:
            import tracemalloc

            tracemalloc.start(12)
            before = tracemalloc.take_snapshot()
        base = (app.refreshes, rss_mib())
        base_polls = app.server_polls
        samples.append(base)
        target = base[0] + refreshes
        while app.refreshes < target:
            await pilot.pause(0.2)
            if app.refreshes - samples[-1][0] >= every:
                samples.append((app.refreshes, rss_mib()))
        samples.append((app.refreshes, rss_mib()))
        servers = len(app.servers)
        polls = app.server_polls - base_polls
        if trace:
            after = tracemalloc.take_snapshot()
            for stat in after.compare_to(before, "traceback")[:8]:
                print(stat, file=sys.stderr)
                for line in stat.traceback.format()[-16:]:
                    print("   ", line, file=sys.stderr)
    elapsed = time.monotonic() - started
    return {
        "refreshes": samples[-1][0] - base[0],
        "servers_shown": servers,
        "server_polls": polls,
        "rss_after_warmup_mib": round(base[1], 2),
        "rss_end_mib": round(samples[-1][1], 2),
        "growth_mib": round(samples[-1][1] - base[1], 2),
        "samples": [(n - base[0], round(m, 2)) for n, m in samples],
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refreshes", type=int, default=20000)
    parser.add_argument("--every", type=int, default=2000, help="sample RSS this often")
    parser.add_argument("--warmup", type=int, default=300, help="refreshes before the baseline")
    parser.add_argument("--interval", type=float, default=0.001, help="refresh interval, s")
    parser.add_argument(
        "--server-interval", type=float, default=0.02, help="servers poll interval, s"
    )
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--trace", action="store_true", help="print tracemalloc's top growth")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sparktop-soak-"))
    for name in ("state", "config", "data"):
        os.environ[f"SPARKTOP_{name.upper()}_DIR"] = str(scratch / name)
    servers = start_servers(args.servers, scratch)
    try:
        result = asyncio.run(
            soak(
                args.refreshes,
                args.every,
                args.warmup,
                args.interval,
                args.trace,
                args.server_interval,
            )
        )
    finally:
        for proc in servers:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['refreshes']} refreshes in {result['seconds']} s, 160x48, "
        f"{result['servers_shown']} servers shown, {result['server_polls']} server polls"
    )
    for n, mib in result["samples"]:
        print(f"  after {n:>6} refreshes: RSS {mib:7.2f} MiB")
    print(f"RSS growth after warm-up: {result['growth_mib']:+.2f} MiB (target <= 5 MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
