"""Cost of one server discovery + poll cycle, with 1, 4 and 8 real llama-servers among ~1000
processes. Prints CPU ms per cycle (all threads of this process) and wall ms per cycle.

    .venv/bin/python tests/bench/servers_cycle.py [--servers 1,4,8] [--processes 1000]

Target (issue #3): <= 20 ms of CPU per cycle; polls run concurrently, each with a timeout.
Needs llama-server (tests/tools/install_llama.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from llama_common import free_port, llama_server_or_exit, start_llama_server
from tinymodel import write_tiny_llama

from sparktop.servers.monitor import ServerMonitor
from sparktop.servers.registry import Registry


def count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", default="1,4,8")
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=30)
    args = parser.parse_args()
    llama_server_or_exit()
    counts = [int(n) for n in args.servers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sparktop-bench-"))
    model = write_tiny_llama(work / "tiny.gguf")
    children: list[subprocess.Popen] = []
    servers: list[tuple[subprocess.Popen, int]] = []
    try:
        filler = max(0, args.processes - count_processes() - max(counts))
        for _ in range(filler):
            children.append(
                subprocess.Popen(
                    ["sleep", "3600"], stdin=subprocess.DEVNULL, start_new_session=True
                )
            )
        print(f"processes on the box: {count_processes()} (incl. {filler} sleepers)")
        print(f"{'servers':>7} {'cpu ms/cycle':>13} {'p95':>6} {'wall ms/cycle':>14} "
              f"{'first cycle cpu ms':>19}")  # fmt: skip
        for count in counts:
            while len(servers) < count:
                port = free_port()
                proc = start_llama_server(model, f"s{port}", port, "-c", "256", "--metrics",
                                          "-t", "1")  # fmt: skip
                servers.append((proc, port))
            monitor = ServerMonitor(registry=Registry(work / "state"), timeout=1.0)
            cpu0 = time.process_time()
            found = monitor.poll()
            first_cpu = (time.process_time() - cpu0) * 1000
            assert sum(1 for s in found if s.health == "ready") >= count, found
            cpu_samples, wall_samples = [], []
            for _ in range(args.cycles):
                cpu = time.process_time()
                wall = time.perf_counter()
                monitor.poll()
                cpu_samples.append((time.process_time() - cpu) * 1000)
                wall_samples.append((time.perf_counter() - wall) * 1000)
                time.sleep(0.2)
            monitor.close()
            p95 = sorted(cpu_samples)[int(0.95 * (len(cpu_samples) - 1))]
            print(
                f"{count:>7} {statistics.median(cpu_samples):>13.1f} {p95:>6.1f} "
                f"{statistics.median(wall_samples):>14.1f} {first_cpu:>19.1f}"
            )
    finally:
        for proc in children + [p for p, _ in servers]:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in children:
            proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
