#!/usr/bin/env python3
"""Check sparktop against a real NVIDIA GPU (the lent H100/H200), not the NVML stub.

A child process takes GPU memory with PyTorch; then this prints nvidia-smi's view, writes
`sparktop status --json`, compares the GPU figures with nvidia-smi's, and saves what the
full-screen view shows (text and SVG) through Textual's headless driver.

    python3 tests/tools/gpu_check.py OUT_DIR [--gib 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HOLDER = """
import sys, time, torch
x = torch.empty(int(float(sys.argv[1]) * 2**30), dtype=torch.uint8, device="cuda")
x.fill_(1)
print("holding", flush=True)
time.sleep(600)
"""


def smi(*query: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-{query[0]}={query[1]}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines()]


async def screen(out: Path) -> str:
    from sparktop.ui.app import SparktopApp
    from sparktop.ui.widgets.gpu_panel import GpuPanel

    app = SparktopApp(interval=1.0, watch_servers=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await asyncio.wait_for(app.snapshot_ready.wait(), 20)
        await pilot.pause(2.5)
        app.save_screenshot(str(out / "h100-screen.svg"))
        return app.query_one(GpuPanel).text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gib", type=float, default=12.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(args.gib)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        time.sleep(1)
        print("nvidia-smi gpu:", smi("gpu", "name,memory.used,memory.total,utilization.gpu"))
        print("nvidia-smi apps:", smi("compute-apps", "pid,used_memory"))
        started = time.monotonic()
        status = subprocess.run(
            [sys.executable, "-m", "sparktop", "status", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"sparktop status --json took {time.monotonic() - started:.2f} s")
        (args.out / "status.json").write_text(status.stdout)
        data = json.loads(status.stdout)
        print(json.dumps({"gpus": data["gpus"]}, indent=1))
        plain = subprocess.run(
            [sys.executable, "-m", "sparktop", "status"], capture_output=True, text=True
        )
        print(plain.stdout)
        gpu = data["gpus"][0]
        apps = {int(p): int(m) for p, m in smi("compute-apps", "pid,used_memory")}
        ours = {p["pid"]: p["used_bytes"] for p in gpu["processes"]}
        print("holder pid", holder.pid, "nvidia-smi MiB", apps.get(holder.pid),
              "sparktop MiB", (ours.get(holder.pid) or 0) / 2**20)  # fmt: skip
        try:
            text = asyncio.run(screen(args.out))
            (args.out / "h100-screen.txt").write_text(text)
            print("GPU panel:\n" + text)
        except ImportError as exc:
            print(f"no screen: {exc}")
    finally:
        holder.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
