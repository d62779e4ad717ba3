"""What `sparktop serve` adds to the engine's own start: the tiny test model, N times each.

    .venv/bin/python tests/bench/serve_overhead.py [--reps 5] [--vocab 300] [--profile FILE]

engine  llama-server started directly with the argv sparktop would use, exec to /health 200
        (polled every 5 ms)
serve   `sparktop serve NAME` (a user catalog entry for the same model, isolated
        SPARKTOP_*_DIR dirs in a temp dir), wall time to exit 0; then `sparktop stop NAME`

Prints min/median of each, of serve - engine, and of "ready to exit": from the engine's first
/health 200 (polled every 5 ms from here during the serve) to serve's exit, i.e. how late
serve notices readiness (its poll interval). Target (issue 14): serve <= engine + 0.3 s.
--profile FILE runs one more `sparktop serve` under cProfile and writes its stats to FILE.
--vocab N writes the model with an N-token vocabulary (the fit check reads its tokenizer).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from llama_common import free_port, llama_server_or_exit
from tinymodel import write_tiny_llama

from sparktop.servers.http import get

NAME = "tiny-bench"


def engine_start(argv: list[str], port: int) -> float:
    """Seconds from exec to /health 200 for llama-server started directly; stops it."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        while get(f"http://127.0.0.1:{port}/health", timeout=1).status != 200:
            if proc.poll() is not None or time.perf_counter() - start > 60:
                raise SystemExit(f"llama-server did not start: {argv}")
            time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


RUN_SCRIPT = Path(__file__).with_name("run_sparktop.py")


def sparktop(env: dict[str, str], *args: str, python: tuple[str, ...] = ()) -> float:
    """Seconds `sparktop ARGS` took; exits on failure."""
    start = time.perf_counter()
    # under a profiler: a script calling the launcher's run(), which returns (main() leaves
    # through os._exit, before cProfile could write its stats)
    target = [str(RUN_SCRIPT)] if python else ["-m", "sparktop"]
    done = subprocess.run([sys.executable, *python, *target, *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sparktop {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return took


def serve_watched(env: dict[str, str], port: int) -> tuple[float, float]:
    """`sparktop serve NAME`: (seconds to exit 0, seconds from the engine's first /health 200,
    seen by polling every 5 ms from here, to that exit: how late serve notices readiness)."""
    first_ok: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if get(f"http://127.0.0.1:{port}/health", timeout=1).status == 200:
                first_ok.append(time.perf_counter())
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        took = sparktop(env, "serve", NAME)
    finally:
        stop.set()
        watcher.join()
    done = time.perf_counter()
    return took, done - first_ok[0] if first_ok else float("nan")


def summary(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"  {label:<16} min {min(ms):7.0f} ms  median {statistics.median(ms):7.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=300)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    llama_server_or_exit()
    root = Path(tempfile.mkdtemp(prefix="sparktop-serve-overhead-"))
    env = {k: v for k, v in os.environ.items() if k != "SPARKTOP_TEST_RUN"}
    for name in ("config", "state", "data"):
        env[f"SPARKTOP_{name.upper()}_DIR"] = os.environ[f"SPARKTOP_{name.upper()}_DIR"] = str(
            root / name
        )
    model = write_tiny_llama(root / "models" / "tiny.gguf", vocab_size=args.vocab)
    port = free_port()
    entry = {"name": NAME, "engine": "llama.cpp", "local_dir": str(model.parent),
             "files": [model.name], "serve": {"served_name": NAME, "port": port, "context": 512,
                                              "args": ["--parallel", "1"]}}  # fmt: skip
    catalog = root / "config" / "catalog" / "bench.yaml"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(yaml.safe_dump({"models": [entry]}, sort_keys=False))

    from sparktop.catalog import load_catalog
    from sparktop.servers.supervisor import build_argv

    argv = build_argv(load_catalog().get(NAME))
    print(f"model {model.stat().st_size / 1e6:.1f} MB, {args.vocab} tokens; {os.cpu_count()} cores")
    print(f"engine argv: {' '.join(argv)}")
    engine, serve, late, stop = [], [], [], []
    try:
        for _ in range(args.reps):
            engine.append(engine_start(argv, port))
            took, after_ready = serve_watched(env, port)
            serve.append(took)
            late.append(after_ready)
            stop.append(sparktop(env, "stop", NAME))
    finally:  # a serve that failed half way leaves no server behind
        subprocess.run([sys.executable, "-m", "sparktop", "stop", NAME], env=env,
                       capture_output=True, timeout=60)  # fmt: skip
    print(summary("engine", engine))
    print(summary("sparktop serve", serve))
    print(summary("serve - engine", [s - e for s, e in zip(serve, engine, strict=True)]))
    print(summary("ready to exit", late))
    print(summary("sparktop stop", stop))
    if args.profile:
        sparktop(env, "serve", NAME, python=("-m", "cProfile", "-o", str(args.profile)))
        sparktop(env, "stop", NAME)
        print(f"cProfile stats of one `sparktop serve`: {args.profile}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
