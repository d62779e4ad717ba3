"""`sparktop agent`: this box's `status --json` over HTTP, read-only, for another sparktop.

GET /status: the `sparktop status --json` document; GET /metrics: the same figures in the
Prometheus text format (OpenMetrics when the scraper's Accept asks for it, see
sparktop.fleet.metrics); GET /health: {"status": "ok"}.
Bound to 127.0.0.1 by default. With a token (read from the environment variable named by
--token-env) every request needs `Authorization: Bearer TOKEN`; an address other than
loopback is refused without one. The token is compared in constant time and never printed
or logged; request log lines carry no headers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from sparktop.fleet import AGENT_PORT, AGENT_TOKEN_ENV

DEFAULT_PORT = AGENT_PORT
DEFAULT_TOKEN_ENV = AGENT_TOKEN_ENV
CACHE_S = 1.0
"""Requests within this many seconds share one snapshot (a probe + server poll each)."""
T = TypeVar("T")
Metrics = Callable[[str], tuple[bytes, str]]
"""The Accept header in; the exposition body and its content type out."""


class AgentError(Exception):
    """Why the agent will not start (one line)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; any other name counts as reachable."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(token_env: str | None, *, explicit: bool) -> str | None:
    """The token from the environment; an explicitly named but empty variable is an error."""
    name = token_env or DEFAULT_TOKEN_ENV
    value = os.environ.get(name, "")
    if not value:
        if explicit:
            raise AgentError(f"--token-env {name}: that environment variable is empty or unset")
        return None
    return value


class StatusCache(Generic[T]):
    """Builds a value (the status document, a Snapshot) at most once per CACHE_S seconds, one
    build at a time."""

    def __init__(self, build: Callable[[], T]) -> None:
        self.build = build
        self.lock = threading.Lock()
        self.doc: T | None = None
        self.at = 0.0

    def get(self) -> T:
        with self.lock:
            if self.doc is None or time.monotonic() - self.at > CACHE_S:
                self.doc = self.build()
                self.at = time.monotonic()
            return self.doc


def make_handler(
    status: Callable[[], dict[str, Any]],
    token: str | None,
    log: Callable[[str], None],
    metrics: Metrics | None = None,
) -> type[BaseHTTPRequestHandler]:
    expected = token.encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        server_version = "sparktop-agent"
        sys_version = ""

        def _send(self, code: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            self._send_body(code, (json.dumps(doc) + "\n").encode(), "application/json", headers)

        def _send_body(
            self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if expected is None:
                return True
            scheme, _, given = (self.headers.get("Authorization") or "").strip().partition(" ")
            # the scheme is case-insensitive (RFC 9110 §11.1); the token is compared whole
            right = hmac.compare_digest(given.strip().encode(), expected)
            return scheme.lower() == "bearer" and right

        def do_GET(self) -> None:
            if not self._authorized():
                self._send(
                    401,
                    {"error": "bearer token required"},
                    {"WWW-Authenticate": 'Bearer realm="sparktop"'},
                )
                return
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._send(200, {"status": "ok"})
            elif path == "/status":
                try:
                    doc = status()
                except Exception as exc:  # a probe bug answers 500, the agent keeps serving
                    self._send(500, {"error": f"status failed: {exc}"})
                    return
                self._send(200, doc)
            elif path == "/metrics" and metrics is not None:
                try:
                    body, content_type = metrics(self.headers.get("Accept") or "")
                except Exception as exc:
                    self._send(500, {"error": f"metrics failed: {exc}"})
                    return
                self._send_body(200, body, content_type)
            else:
                self._send(404, {"error": "not found (try /status, /metrics or /health)"})

        def do_POST(self) -> None:
            self._send(
                405, {"error": "read-only: GET /status, /metrics or /health"}, {"Allow": "GET"}
            )

        do_PUT = do_DELETE = do_PATCH = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass  # http.server's own lines; requests are logged by log_request below

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # method and path only: never headers (the token), never the query string
            method = (self.command or "-")[:10]
            path = (self.path or "-").split("?", 1)[0][:100]
            log(f"{self.client_address[0]} {method} {path} {code}")

    return Handler


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    bind: str,
    port: int,
    token: str | None,
    status: Callable[[], dict[str, Any]],
    log: Callable[[str], None],
    metrics: Metrics | None = None,
) -> ThreadingHTTPServer:
    """The agent's HTTP server (not started); refuses a non-loopback bind without a token."""
    if token is None and not is_loopback(bind):
        raise AgentError(
            f"refusing to listen on {bind} without a token: set a token in an environment "
            f"variable and name it with --token-env (default {DEFAULT_TOKEN_ENV})"
        )
    handler = make_handler(StatusCache(status).get, token, log, metrics)
    cls = _Server6 if ":" in bind else ThreadingHTTPServer
    try:
        server = cls((bind.strip("[]"), port), handler)
    except OSError as exc:
        raise AgentError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    return server


TICK_S = 5.0
"""How often the agent's background work (`tick`: idle stops) runs."""
Tick = Callable[[], Iterable[str]]
"""Background work of a long-running agent; returns lines to log (what it did)."""


def start_ticking(
    tick: Tick, log: Callable[[str], None], every_s: float = TICK_S
) -> threading.Event:
    """Run `tick` every `every_s` seconds on a daemon thread, logging its lines and its
    failures, until the returned event is set."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every_s):
            try:
                for line in tick():
                    log(line)
            except Exception as exc:  # the agent keeps serving /status
                log(f"background check failed: {exc}")

    threading.Thread(target=loop, name="sparktop-agent-tick", daemon=True).start()
    return done


def run_agent(
    status: Callable[[], dict[str, Any]],
    bind: str,
    port: int,
    token_env: str | None,
    metrics: Metrics | None = None,
    tick: Tick | None = None,
) -> int:
    """`sparktop agent`: serve `status()` until SIGINT/SIGTERM. Exit 2 on a refused or
    impossible bind. The status document comes from above (the Snapshot producer), and
    so does `tick`, run every few seconds meanwhile (the idle stops)."""

    def log(line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} {line}", file=sys.stderr, flush=True)

    try:
        token = read_token(token_env, explicit=token_env is not None)
        server = make_server(bind, port, token, status, log, metrics)
    except AgentError as exc:
        print(f"sparktop: error: {exc}", file=sys.stderr)
        return 2
    host, real_port = server.server_address[:2]
    auth = "bearer token required" if token else "no token (loopback only)"
    paths = "/status, /metrics" if metrics is not None else "/status"
    log(f"sparktop agent on http://{host}:{real_port} ({paths}; {auth})")

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    ticking = start_ticking(tick, log) if tick is not None else None
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if ticking is not None:
            ticking.set()
        server.server_close()
    log("sparktop agent stopped")
    return 0
