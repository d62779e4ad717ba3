"""A stand-in for engines that cannot run here (vLLM, SGLang) and for misbehaving servers.

It answers /health, /v1/models and /metrics from samples taken from the engines' upstream
sources (tests/fixtures/engine_samples), with token counters that grow between scrapes so
rates can be computed. Started under the engines' real launch forms (`vllm serve M --port P`,
`python -m sglang.launch_server --model-path M --port P`), it is found by the same process-table
discovery as the real thing. Modes: ok, loading (503), hang (accept, never answer), garbage,
reset (close the connection at once),
stubborn (ok, but ignores SIGTERM), busy (ok, burning CPU in a thread and, for vLLM, in an
EngineCore worker process).

    python fake_engine.py ENGINE MODE [engine argv …]
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "engine_samples"


def _opt(argv: list[str], name: str, default: str) -> str:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def main(engine: str, mode: str, argv: list[str]) -> None:
    port = int(_opt(argv, "--port", "8000"))
    if mode == "stubborn":  # ignores SIGTERM, like a server stuck in a CUDA call
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mode = "ok"
    if mode == "busy":  # CPU-bound, as a CPU-only engine under load
        _burn(engine)
        mode = "ok"
    print(f"fake {engine} listening on {port} ({mode})", flush=True)
    served = _opt(argv, "--served-model-name", "fake-model")
    sample = (SAMPLES / f"{'vllm' if engine == 'vllm' else 'sglang'}_metrics.txt").read_text()
    started = time.monotonic()
    counters = re.compile(r"^((?:vllm|sglang):(?:prompt|generation)_tokens_total\{[^}]*\}) (\S+)$")

    def metrics_text() -> str:
        grown = []
        elapsed = time.monotonic() - started
        for line in sample.splitlines():
            match = counters.match(line)
            if match:
                rate = 1000.0 if "prompt" in match.group(1) else 50.0
                line = f"{match.group(1)} {float(match.group(2)) + rate * elapsed}"
            grown.append(line)
        return "\n".join(grown) + "\n"

    if mode == "hang":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        held = []
        while True:
            conn, _ = server.accept()
            held.append(conn)  # accept and never answer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if mode == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
                return
            if mode == "garbage":
                self.wfile.write(b"\x00\xffnot http at all\r\n\r\n")
                return
            if self.path == "/health":
                if mode == "loading":
                    self._send(503, b"")
                else:
                    self._send(200, b"")
            elif self.path == "/v1/models":
                body = {
                    "object": "list",
                    "data": [{"id": served, "object": "model", "owned_by": engine,
                              "max_model_len": 32768}],
                }  # fmt: skip
                self._send(200, json.dumps(body).encode())
            elif self.path == "/metrics":
                self._send(200, metrics_text().encode(), "text/plain; version=0.0.4")
            else:
                self._send(404, b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


def _burn(engine: str) -> None:
    """Spin in a thread, and for vLLM in a worker process titled like its EngineCore."""
    import subprocess

    def spin() -> None:
        while True:
            pass

    threading.Thread(target=spin, daemon=True).start()
    if engine == "vllm":
        subprocess.Popen(["VLLM::EngineCore", "-c", "while True: pass"], executable=sys.executable)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
