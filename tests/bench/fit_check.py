"""Cost of the fit check's GGUF read: a Qwen-sized tokenizer (152,064 tokens, 151,387 merges,
written by gguf.GGUFWriter into a temp dir) and the tiny test model. Prints ms per read.

    .venv/bin/python tests/bench/fit_check.py [--reps 5] [--before-reps 1]

before  the old path: gguf.GGUFReader parses the whole file, then the same shape is built from
        its fields (what gguf_meta did until issue 14)
cold    the header reader, nothing remembered (no cache file, no in-process memo, the skip
        pattern not yet compiled): the first fit check after a download
warm    the shape from the cache file (a new process, file unchanged)
memo    the same process asking again

Target (issue 14): cold <= 50 ms for the Qwen-sized tokenizer. Also checks that the old and
new reads give the same values, and times `sparktop catalog NAME` end to end (a new process,
user catalog entry on the big file) cold and warm.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: tinymodel, bigvocab

import yaml
from bigvocab import full_parse, write_big_vocab
from tinymodel import write_tiny_llama

from sparktop.catalog import gguf_header, gguf_meta, shape_cache


def before(path: Path) -> gguf_meta.GgufShape:
    return gguf_meta.shape_from_values(str(path), full_parse(path))


def cold(path: Path) -> gguf_meta.GgufShape:
    shape_cache.cache_file().unlink(missing_ok=True)
    gguf_meta._read.cache_clear()
    gguf_header._short_strings.cache_clear()
    re.purge()  # re keeps compiled patterns too
    return gguf_meta.read_shape(path)


def warm(path: Path) -> gguf_meta.GgufShape:
    gguf_meta._read.cache_clear()
    return gguf_meta.read_shape(path)


def timed(fn: Callable[[Path], Any], path: Path, reps: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per call: on a busy box the CPU figure is the steadier one."""
    times = []
    for _ in range(reps):
        start, cpu = time.perf_counter(), time.process_time()
        fn(path)
        times.append(((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000))
    return times


def line(label: str, times: list[tuple[float, float]]) -> str:
    wall = [w for w, _c in times]
    cpu = [c for _w, c in times]
    return (
        f"  {label:<6} wall min {min(wall):9.1f} ms  median {statistics.median(wall):9.1f} ms"
        f"   CPU median {statistics.median(cpu):9.1f} ms"
    )


def _children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def cli_times(path: Path, root: Path, reps: int) -> tuple[list[tuple[float, float]], ...]:
    """`sparktop catalog big`, a new process each time: cache emptied first, then kept."""
    env = dict(os.environ)
    for name in ("config", "state", "data"):
        env[f"SPARKTOP_{name.upper()}_DIR"] = str(root / name)
    entry = {"name": "big", "engine": "llama.cpp", "local_dir": str(path.parent),
             "files": [path.name], "serve": {"port": 1, "context": 8192}}  # fmt: skip
    catalog = root / "config" / "catalog" / "bench.yaml"
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_text(yaml.safe_dump({"models": [entry]}))
    cache = root / "state" / shape_cache.cache_file().name
    argv = [sys.executable, "-m", "sparktop", "catalog", "big"]
    result: tuple[list[tuple[float, float]], ...] = ([], [])
    for keep in (False, True):
        for _ in range(reps):
            if not keep:
                cache.unlink(missing_ok=True)
            start, cpu = time.perf_counter(), _children_cpu_ms()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            wall = (time.perf_counter() - start) * 1000
            result[keep].append((wall, _children_cpu_ms() - cpu))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--before-reps", type=int, default=1, help="the old full parse: slow")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparktop-fit-") as tmp:
        root = Path(tmp)
        os.environ["SPARKTOP_STATE_DIR"] = str(root / "state")
        print("writing the Qwen-sized tokenizer GGUF ...", flush=True)
        models = {
            "tiny model (300 tokens)": write_tiny_llama(root / "tiny" / "tiny.gguf"),
            "Qwen-sized tokenizer": write_big_vocab(root / "big" / "big.gguf"),
        }
        for label, path in models.items():
            size = path.stat().st_size / 1e6
            print(f"{label}: {path.name}, {size:.1f} MB")
            same = before(path) == cold(path)
            values = full_parse(path)
            picked = gguf_header.read_kv(path, gguf_meta.wanted)
            same_values = picked == {k: v for k, v in values.items() if gguf_meta.wanted(k)}
            print(f"  old and new read the same shape: {same}; the same values: {same_values}")
            print(line("before", timed(before, path, args.before_reps)))
            print(line("cold", timed(cold, path, args.reps)))
            print(line("warm", timed(warm, path, args.reps)))
            print(line("memo", timed(gguf_meta.read_shape, path, args.reps)))
        big = models["Qwen-sized tokenizer"]
        cli_cold, cli_warm = cli_times(big, root / "cli", args.reps)
        print("`sparktop catalog big` (new process, Qwen-sized tokenizer):")
        print(line("cold", cli_cold))
        print(line("warm", cli_warm))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
