"""The agent's cost of /metrics (issue 17): a real `sparktop agent` seeing 4 real llama-servers
(the tiny model, --metrics), scraped N times; prints the agent's CPU ms per scrape (user +
system of the agent process, from /proc) and its RSS.

Two figures, because the agent builds one Snapshot per second and serves every request of
that second from it: back-to-back scrapes (N of them: mostly the exposition itself), and
scrapes spaced past the cache (--fresh of them, each a whole probe + server poll +
exposition, what a Prometheus scraping every 15 s costs).

    .venv/bin/python tests/bench/agent_metrics.py [--scrapes 1000] [--fresh 20] [--servers 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from llama_common import free_port, start_llama_server
from tinymodel import write_tiny_llama

from sparktop.fleet.agent import CACHE_S
from sparktop.servers.http import Connection, get


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def scrape_cost(conn: Connection, agent: psutil.Process, count: int, gap: float) -> float:
    """CPU ms of the agent per scrape over `count` scrapes `gap` seconds apart."""
    before = cpu_s(agent)
    for _ in range(count):
        reply = conn.get("/metrics", timeout=30)
        assert reply.status == 200 and b"sparktop_server_up" in reply.body, reply.status
        if gap:
            time.sleep(gap)
    return (cpu_s(agent) - before) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--fresh", type=int, default=20)
    parser.add_argument("--servers", type=int, default=4)
    args = parser.parse_args()
    # the agent sees only this run's servers, as the suite's do
    os.environ["SPARKTOP_TEST_RUN"] = f"bench-agent-metrics-{os.getpid()}"
    started: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="sparktop-agent-metrics-") as tmp:
        root = Path(tmp)
        for name in ("config", "state", "data"):
            os.environ[f"SPARKTOP_{name.upper()}_DIR"] = str(root / name)
        model = write_tiny_llama(root / "models" / "tiny.gguf")
        try:
            for index in range(args.servers):
                started.append(start_llama_server(model, f"tiny-{index}", free_port(),
                                                  "--metrics", "-c", "256"))  # fmt: skip
            port = free_port()
            agent_proc = subprocess.Popen(
                [sys.executable, "-m", "sparktop", "agent", "--port", str(port)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            started.append(agent_proc)
            deadline = time.monotonic() + 60
            while get(f"http://127.0.0.1:{port}/health", timeout=1).status != 200:
                if time.monotonic() > deadline:
                    raise SystemExit("the agent did not start")
                time.sleep(0.1)
            agent = psutil.Process(agent_proc.pid)
            conn = Connection("127.0.0.1", port)
            body = conn.get("/metrics", timeout=30).body
            servers = body.count(b"sparktop_server_up{")
            time.sleep(CACHE_S + 0.1)  # the servers' rates have two polls behind them
            fresh = scrape_cost(conn, agent, args.fresh, CACHE_S + 0.05)
            cached = scrape_cost(conn, agent, args.scrapes, 0.0)
            rss = agent.memory_info().rss
            print(f"agent /metrics with {servers} servers ({len(body)} bytes a scrape); "
                  f"shared machine: {os.cpu_count()} CPUs, other work may be running")  # fmt: skip
            print(f"  {args.scrapes} back-to-back scrapes: {cached:.2f} CPU ms per scrape")
            print(f"  {args.fresh} scrapes {CACHE_S + 0.05:.2f} s apart (a fresh snapshot each): "
                  f"{fresh:.1f} CPU ms per scrape")  # fmt: skip
            print(f"  agent RSS after: {rss / 2**20:.1f} MiB")
            conn.close()
        finally:
            for proc in reversed(started):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()


if __name__ == "__main__":
    main()
