"""What sparktop's API benchmark costs and how far its client-side figures sit from the server's.

    .venv/bin/python tests/bench/bench_overhead.py [--layers 8] [--embd 512] [--reps 3]

Serves a generated model with a real llama-server, then
1. per request: client-timed decode and prefill tok/s minus llama.cpp's own `timings`
   (prompt_per_second, predicted_per_second) for the same request;
2. wall time of a full pp512 / tg128 x 3 API run (with warm-up) versus llama-bench's own
   `-p 512 -n 128 -r 3` on the same file, and the figures each reports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from llama_common import free_port, start_llama_server
from tinymodel import write_tiny_llama

from sparktop.bench.api import run_api_bench
from sparktop.bench.llama_bench import run_llama_bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--embd", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sparktop-benchcost-"))
    model = write_tiny_llama(work / "m.gguf", layers=args.layers, n_embd=args.embd, n_head=8,
                             n_kv_head=4, n_ff=args.embd * 2)  # fmt: skip
    port = free_port()
    proc = start_llama_server(model, "m", port, "-c", "4096", "--parallel", "1")
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"model: {args.layers} layers x {args.embd}, {model.stat().st_size / 1e6:.1f} MB "
              f"(f32), {os.cpu_count()} cores")  # fmt: skip
        started = time.perf_counter()
        result = run_api_bench(base, "m", prompt_tokens=512, gen_tokens=128,
                               repetitions=args.reps)  # fmt: skip
        api_wall = time.perf_counter() - started
        print("per request: client − server (t/s, and % of the server's figure)")
        for i, s in enumerate(result.samples, 1):
            d_tg = s.decode_tps - (s.server_decode_tps or 0)
            d_pp = s.prefill_tps - (s.server_prompt_tps or 0)
            print(f"  {i}: decode {s.decode_tps:8.1f} vs {s.server_decode_tps:8.1f} "
                  f"({d_tg:+7.1f}, {100 * d_tg / s.server_decode_tps:+5.1f}%)   "
                  f"prefill {s.prefill_tps:8.1f} vs {s.server_prompt_tps:8.1f} "
                  f"({d_pp:+7.1f}, {100 * d_pp / s.server_prompt_tps:+5.1f}%)")  # fmt: skip
        overhead_ms = [
            (s.total_s - (s.prompt_tokens / s.server_prompt_tps)
             - (s.generated_tokens / s.server_decode_tps)) * 1000
            for s in result.samples if s.server_prompt_tps and s.server_decode_tps
        ]  # fmt: skip
        print(f"  end-to-end latency minus the server's own prompt+predict time: median "
              f"{statistics.median(overhead_ms):.1f} ms per request")  # fmt: skip
        summary = result.summary()
        print(f"API pp512/tg128 x{args.reps} (+1 warm-up): {api_wall:.2f} s wall; "
              f"prefill {summary['prefill_tps']['median']:.1f} t/s, "
              f"decode {summary['decode_tps']['median']:.1f} t/s")  # fmt: skip
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    started = time.perf_counter()
    rows = run_llama_bench(model, prompt=512, gen=128, repetitions=args.reps)
    bench_wall = time.perf_counter() - started
    figures = ", ".join(f"{r.test} {r.avg_ts:.1f} ± {r.stddev_ts:.1f} t/s" for r in rows)
    print(f"llama-bench -p 512 -n 128 -r {args.reps}: {bench_wall:.2f} s wall; {figures}")
    print(json.dumps({"api_wall_s": api_wall, "llama_bench_wall_s": bench_wall}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
