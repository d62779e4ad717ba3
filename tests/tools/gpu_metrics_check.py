#!/usr/bin/env python3
"""Check sparktop's GPU metrics against a real NVIDIA GPU, through a real Prometheus.

A child process takes GPU memory with PyTorch; a `sparktop agent` on loopback serves
`/metrics`; `promtool check metrics` reads the exposition; a Prometheus (its own config and
storage) scrapes the agent every second; the GPU series it stored are compared with
nvidia-smi's figures; and `sparktop hosts --json`, configured with that Prometheus, lists
the instance. Everything started here is stopped by PID at the end.

    python3 tests/tools/gpu_metrics_check.py OUT_DIR --prometheus BIN --promtool BIN [--gib 12]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gpu_check import HOLDER, smi


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def ask(base: str, promql: str) -> list[dict]:
    doc = json.loads(get(f"{base}/api/v1/query?query={urllib.parse.quote(promql, safe='')}"))
    return doc["data"]["result"]


def wait(what: str, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--promtool", required=True)
    parser.add_argument("--gib", type=float, default=12.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sparktop-gpu-metrics-"))
    env = dict(os.environ, **{f"SPARKTOP_{d}_DIR": str(work / d.lower())
                              for d in ("CONFIG", "STATE", "DATA")})  # fmt: skip
    env.pop("SPARKTOP_AGENT_TOKEN", None)
    started: list[subprocess.Popen] = []
    try:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(args.gib)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        started.append(holder)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        agent_port, prom_port = free_port(), free_port()
        agent_log = (args.out / "agent.log").open("w")
        started.append(subprocess.Popen(
            [sys.executable, "-m", "sparktop", "agent", "--port", str(agent_port)],
            stdout=agent_log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        ))  # fmt: skip
        agent = f"127.0.0.1:{agent_port}"
        exposition = wait("the agent's /metrics", lambda: get(f"http://{agent}/metrics"))
        (args.out / "metrics.txt").write_text(exposition)
        check = subprocess.run([args.promtool, "check", "metrics"], input=exposition,
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        print(f"promtool check metrics: rc {check.returncode} {check.stdout}{check.stderr}")
        print("".join(line + "\n" for line in exposition.splitlines()
                      if line.startswith("sparktop_gpu_")))  # fmt: skip

        config = work / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "sparktop", "static_configs": [{"targets": [agent]}]}],
        }))  # fmt: skip
        prom_log = (args.out / "prometheus.log").open("w")
        started.append(subprocess.Popen(
            [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=prom_log, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
        base = f"http://127.0.0.1:{prom_port}"
        wait("Prometheus to store GPU series",
             lambda: ask(base, "sparktop_gpu_memory_used_bytes"), timeout=90)  # fmt: skip
        time.sleep(2)
        smi_used = {int(i): float(u) * 2**20 for i, u in smi("gpu", "index,memory.used")}
        smi_total = {int(i): float(t) * 2**20 for i, t in smi("gpu", "index,memory.total")}
        print("gpu  series                          Prometheus       nvidia-smi")
        for name, figures in (("memory_used_bytes", smi_used), ("memory_total_bytes", smi_total)):
            for item in ask(base, f"sparktop_gpu_{name}"):
                index = int(item["metric"]["gpu"])
                print(f"{index:<4} sparktop_gpu_{name:<18} {float(item['value'][1]):>16,.0f} "
                      f"{figures.get(index, float('nan')):>16,.0f}")  # fmt: skip
        for name in ("utilization_ratio", "temperature_celsius", "power_watts",
                     "power_limit_watts"):  # fmt: skip
            for item in ask(base, f"sparktop_gpu_{name}"):
                print(f"{item['metric']['gpu']:<4} sparktop_gpu_{name:<18} {item['value'][1]:>16}"
                      f"  ({item['metric']['name']})")  # fmt: skip
        print("nvidia-smi:", smi("gpu", "index,utilization.gpu,temperature.gpu,power.draw,"
                                 "power.limit"))  # fmt: skip

        (work / "config").mkdir(parents=True, exist_ok=True)
        (work / "config" / "config.yaml").write_text(
            json.dumps({"hosts": [{"prometheus": base, "name": "lab"}]})
        )
        hosts = subprocess.run([sys.executable, "-m", "sparktop", "hosts", "--json"],
                               capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        (args.out / "hosts.json").write_text(hosts.stdout)
        print(f"sparktop hosts --json: rc {hosts.returncode} {hosts.stderr.strip()}")
        for row in json.loads(hosts.stdout)["hosts"]:
            print(row["name"], row["transport"], row["reachable"], json.dumps(row["summary"]))
        text = subprocess.run([sys.executable, "-m", "sparktop", "hosts"],
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        print(text.stdout)
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
