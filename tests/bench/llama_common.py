"""What the benchmark scripts share: a free loopback port and a real llama-server to start."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: tinymodel, fake_hub

from sparktop.engines import find_llama_server
from sparktop.servers.http import get


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def llama_server_or_exit() -> str:
    server = find_llama_server()
    if server is None:
        raise SystemExit("llama-server not found: run tests/tools/install_llama.py")
    return server


def start_llama_server(model: Path, alias: str, port: int, *extra: str) -> subprocess.Popen:
    """Start llama-server in its own process group and wait until /health says ok."""
    proc = subprocess.Popen(
        [llama_server_or_exit(), "-m", str(model), "--alias", alias, "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while get(f"http://127.0.0.1:{port}/health", timeout=1).status != 200:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"llama-server on port {port} did not start")
        time.sleep(0.1)
    return proc
