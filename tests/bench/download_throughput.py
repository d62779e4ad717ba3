"""Throughput of `sparktop download` against `hf download`: same files, same loopback Hub.

    .venv/bin/python tests/bench/download_throughput.py [--files 8] [--size-mb 64] [--runs 3]

A fake Hub (tests/fake_hub.py, its own process) serves a repo of `--files` GGUFs of
`--size-mb` MiB each (512 MiB by default); both tools fetch all of it into fresh directories,
alternating, `--runs` times each, over plain HTTP (Xet off: the loopback Hub has no Xet
storage). Each run is timed from the first body byte the Hub sends to the tool's exit (so
interpreter start and the file listing are left out), and its CPU time (user + system, the
tool's process) is taken from the kernel's accounting of finished children. Prints every
run, then per tool the best run's MB/s, the CPU seconds per GB, and the ratio of the best
runs (sparktop / hf; the target is >= 1.0 on a quiet machine). sparktop also checks every
file's sha256 (while the bytes arrive); hf checks sizes only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))

from fake_hub import client_env  # noqa: E402

REPO = "bench/Shards-GGUF"
GB = 1e9


class _Endpoint:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


def _hub(endpoint: str, path: str, post: bool = False) -> dict:
    request = urllib.request.Request(endpoint + path, method="POST" if post else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(argv: list[str], env: dict[str, str], endpoint: str, target: Path) -> dict:
    """Run one download; its bytes, first-byte-to-exit seconds and CPU seconds."""
    _hub(endpoint, "/_stats/reset", post=True)
    cpu = _children_cpu()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    ended = time.time()
    cpu = _children_cpu() - cpu
    stats = _hub(endpoint, "/_stats")
    size = sum(p.stat().st_size for p in target.rglob("*.gguf") if ".cache" not in p.parts)
    return {"bytes": size, "sent": stats["bytes_sent"], "seconds": ended - stats["first_body_at"],
            "cpu": cpu}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8, help="GGUFs in the repo")
    parser.add_argument("--size-mb", type=float, default=64.0, help="MiB of each GGUF")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    tools = {"sparktop": bin_dir / "sparktop", "hf": bin_dir / "hf"}
    work = Path(tempfile.mkdtemp(prefix="sparktop-dlbench-"))
    hub = subprocess.Popen(
        [sys.executable, str(TESTS / "fake_hub.py"), "--port", "0", "--repo", REPO,
         "--files", str(args.files), "--size-mb", str(args.size_mb)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert hub.stdout is not None
        endpoint = hub.stdout.readline().strip()
        env = dict(os.environ) | client_env(_Endpoint(endpoint), work / "hf-home")  # type: ignore[arg-type]
        env |= {"SPARKTOP_DATA_DIR": str(work / "data"), "SPARKTOP_CONFIG_DIR": str(work / "c"),
                "SPARKTOP_STATE_DIR": str(work / "state")}  # fmt: skip
        results: dict[str, list[dict]] = {tool: [] for tool in tools}
        for run in range(args.runs):
            for tool, binary in tools.items():
                target = work / f"{tool}-{run}"
                argv = [str(binary), "download", REPO, "--local-dir", str(target)]
                got = one_run(argv, env, endpoint, target)
                results[tool].append(got)
                print(f"run {run + 1} {tool:<8} {got['bytes'] / 1e6:8.1f} MB in "
                      f"{got['seconds']:6.2f} s = {got['bytes'] / got['seconds'] / 1e6:7.1f} MB/s"
                      f"  cpu {got['cpu']:6.2f} s", flush=True)  # fmt: skip
                shutil.rmtree(target)
        print(f"repo: {args.files} files x {args.size_mb:g} MiB, first body byte to exit, "
              f"best of {args.runs}")  # fmt: skip
        best = {}
        for tool, runs in results.items():
            top = min(runs, key=lambda r: r["seconds"])
            best[tool] = top["bytes"] / top["seconds"] / 1e6
            cpu_per_gb = sum(r["cpu"] for r in runs) / (sum(r["bytes"] for r in runs) / GB)
            print(f"{tool:<8} best {best[tool]:7.1f} MB/s ({top['seconds']:.2f} s)  "
                  f"cpu {cpu_per_gb:5.2f} s per GB")  # fmt: skip
        print(f"ratio sparktop / hf: {best['sparktop'] / best['hf']:.3f}")
        print("(sparktop checks each file's sha256 as its bytes arrive; hf checks sizes only)")
    finally:
        hub.terminate()
        hub.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
