"""CPU of one kept-alive GET, the server poller's unit of work: http.client (what
`sparktop.servers.http.Connection` uses), httpx.Client (one connection kept alive), httpcore
(httpx's transport) and sparktop's Connection itself, against a small HTTP/1.1 server in this
process. Prints the calling thread's CPU ms per request (median of rounds).

    .venv/bin/python tests/bench/http_get_cost.py [--requests 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx

from sparktop.servers import http

BODY = b'{"status":"ok"}' * 50  # about a llama-server /metrics page's order of size


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/metrics"
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client = httpx.Client(verify=plain, trust_env=False, limits=httpx.Limits(max_connections=1))
    pool = httpcore.ConnectionPool(max_connections=1, ssl_context=plain)
    limits = {"timeout": {"connect": 2, "read": 2, "write": 2, "pool": 2}}
    stdlib = HTTPConnection("127.0.0.1", port, timeout=2)
    ours = http.Connection("127.0.0.1", port)

    def with_stdlib() -> None:
        stdlib.request("GET", "/metrics", headers={"Accept": "application/json"})
        stdlib.getresponse().read()

    cases: dict[str, Callable[[], object]] = {
        "http.client": with_stdlib,
        "httpx.Client": lambda: client.get(url, timeout=2).read(),
        "httpcore pool": lambda: pool.request("GET", url, extensions=limits).read(),
        "sparktop Connection": lambda: ours.get("/metrics", timeout=2),
    }
    spent: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, call in cases.items():
            call()
            started = time.thread_time()
            for _ in range(args.requests):
                call()
            spent[name].append((time.thread_time() - started) / args.requests * 1000)
    print(f"{'client':<20} {'CPU ms/GET':>10}  (median of {args.rounds} rounds)")
    for name, values in spent.items():
        print(f"{name:<20} {statistics.median(values):>10.3f}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
