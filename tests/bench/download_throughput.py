"""Throughput of `sparktop download` against `hf download`: same files, same loopback Hub.

    .venv/bin/python tests/bench/download_throughput.py [--size-mb 256] [--runs 3]

A fake Hub (tests/fake_hub.py, its own process) serves an Unsloth-style repo; both tools
fetch the UD-Q2_K_XL shards into fresh directories, alternating, `--runs` times each. Prints
MB/s per run, the medians and the ratio sparktop / hf (target >= 0.95).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))

from fake_hub import client_env  # noqa: E402


class _Endpoint:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=256.0, help="size of each GGUF")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    sparktop, hf = bin_dir / "sparktop", bin_dir / "hf"
    work = Path(tempfile.mkdtemp(prefix="sparktop-dlbench-"))
    hub = subprocess.Popen(
        [sys.executable, str(TESTS / "fake_hub.py"), "--port", "0", "--repo", "unsloth/Bench-GGUF",
         "--size-mb", str(args.size_mb)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert hub.stdout is not None
        endpoint = hub.stdout.readline().strip()
        env = dict(os.environ) | client_env(_Endpoint(endpoint), work / "hf-home")  # type: ignore[arg-type]
        env["SPARKTOP_DATA_DIR"] = str(work / "data")
        env["SPARKTOP_CONFIG_DIR"] = str(work / "config")
        results: dict[str, list[float]] = {"sparktop": [], "hf": []}
        total_bytes = 0
        for run in range(args.runs):
            for tool in ("sparktop", "hf"):
                target = work / f"{tool}-{run}"
                argv = [str(sparktop if tool == "sparktop" else hf), "download",
                        "unsloth/Bench-GGUF", "--include", "UD-Q2_K_XL/*", "--local-dir",
                        str(target)]  # fmt: skip
                started = time.perf_counter()
                subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
                elapsed = time.perf_counter() - started
                size = sum(p.stat().st_size for p in target.rglob("*.gguf"))
                total_bytes = size
                results[tool].append(size / elapsed / 1e6)
                print(f"run {run + 1} {tool:<8} {size / 1e6:8.1f} MB in {elapsed:6.2f} s = "
                      f"{size / elapsed / 1e6:8.1f} MB/s", flush=True)  # fmt: skip
                shutil.rmtree(target)
        ours, theirs = statistics.median(results["sparktop"]), statistics.median(results["hf"])
        print(f"files: {total_bytes / 1e6:.1f} MB per run (2 shards), {args.runs} runs each")
        print(f"median sparktop {ours:.1f} MB/s, hf {theirs:.1f} MB/s, ratio {ours / theirs:.3f}")
        print("(sparktop also checks each file's sha256; hf checks sizes only)")
    finally:
        hub.terminate()
        hub.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
