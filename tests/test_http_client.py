"""sparktop.servers.http against real sockets on 127.0.0.1: every call (httpx's one-off
requests and streams, the poller's kept-alive connection) keeps its per-call timeout,
failures read as the same short phrases whichever library raised, and the kept-alive poll
connection survives a server that closed it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from conftest import free_port

from sparktop.servers import http


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that hands each accepted connection to `answer`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def loop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in held:
            conn.close()


def never_answers(conn: socket.socket) -> None:
    conn.recv(65536)  # reads the request, says nothing


def test_a_hung_server_costs_one_per_call_timeout():
    with raw_server(never_answers) as port:
        started = time.monotonic()
        reply = http.get(f"http://127.0.0.1:{port}/health", timeout=0.4)
        one_shot = time.monotonic() - started
        conn = http.Connection("127.0.0.1", port)
        started = time.monotonic()
        kept = conn.get("/health", timeout=0.4)
        polled = time.monotonic() - started
        conn.close()
    for got, took in ((reply, one_shot), (kept, polled)):
        assert got.status is None and got.error == "timed out" and got.cause is None
        assert 0.35 < took < 1.0, f"a hung server took {took:.2f} s with a 0.4 s timeout"


def test_a_trickling_server_is_cut_at_the_overall_deadline():
    def trickle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            time.sleep(0.1)  # each byte inside the read timeout, the whole far past it
            try:
                conn.sendall(b"x")
            except OSError:
                return

    with raw_server(trickle) as port:
        started = time.monotonic()
        reply = http.get(f"http://127.0.0.1:{port}/metrics", timeout=0.5)
        took = time.monotonic() - started
    assert reply.error == "timed out"
    assert took < 1.5, f"took {took:.2f} s: the deadline is about 2x the timeout"


def reset(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def close_quietly(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.close()


def garbage(conn: socket.socket) -> None:
    conn.recv(65536)
    conn.sendall(b"\x00\xffnot http at all\r\n\r\n")
    conn.close()


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (reset, "connection reset"),
        (close_quietly, "connection reset"),
        (garbage, "bad HTTP reply ("),
    ],
)
def test_a_misbehaving_server_reads_as_the_same_phrase(answer, phrase):
    with raw_server(answer) as port:
        reply = http.get(f"http://127.0.0.1:{port}/health", timeout=2)
        polled = http.Connection("127.0.0.1", port).get("/health", timeout=2)
    assert reply.status is None and (reply.error or "").startswith(phrase)
    assert polled.status is None and (polled.error or "").startswith(phrase)


def test_a_closed_port_is_connection_refused_with_the_system_words():
    port = free_port()
    reply = http.get(f"http://127.0.0.1:{port}/health", timeout=2)
    assert reply.error == "connection refused" and reply.cause == "Connection refused"
    with pytest.raises(http.RequestFailed) as caught:
        list(http.stream_lines(f"http://127.0.0.1:{port}/v1/completions", {}, timeout=2))
    assert str(caught.value) == "connection refused"
    assert caught.value.cause == "Connection refused"
    assert isinstance(caught.value, OSError)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the engines answer
    connections: ClassVar[list[int]] = []

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        Handler.connections.append(self.client_address[1])
        body = json.dumps({"path": self.path, "ua": self.headers.get("User-Agent")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/bye":
            self.close_connection = True  # the server drops the kept-alive socket

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = json.loads(self.rfile.read(length))
        if sent.get("fail"):
            self.send_response(500)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"no luck")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for n in range(3):
            event = f"data: {n}\r\n\r\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Handler.connections = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_a_poll_connection_is_kept_alive_and_renewed_when_the_server_drops_it(server):
    conn = http.Connection("127.0.0.1", server)
    try:
        first = conn.get("/health", timeout=2)
        second = conn.get("/metrics", timeout=2)
        assert first.ok and second.ok and second.json()["path"] == "/metrics"
        assert first.json()["ua"] == "sparktop"
        assert Handler.connections[0] == Handler.connections[1]  # one socket for both
        assert conn.get("/bye", timeout=2).ok
        time.sleep(0.1)
        again = conn.get("/health", timeout=2)
        assert again.ok, again
        assert Handler.connections[-1] != Handler.connections[0]  # a fresh socket
    finally:
        conn.close()


def test_polls_ignore_proxy_settings_the_agent_honours_them(server, monkeypatch):
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = f"http://127.0.0.1:{server}/v1/models"
    assert http.get(url, timeout=2).ok  # servers on this box are reached directly
    via_proxy = http.get(url, timeout=2, trust_env=True)  # as urllib did for the agent
    assert via_proxy.status is None and via_proxy.error == "connection refused"


def test_stream_lines_yields_each_line_as_it_comes_and_says_why_it_failed(server):
    url = f"http://127.0.0.1:{server}/v1/completions"
    lines = [line for _when, line in http.stream_lines(url, {"stream": True}, timeout=5)]
    assert lines == [b"data: 0", b"", b"data: 1", b"", b"data: 2", b""]
    with pytest.raises(http.RequestFailed, match=r"^HTTP 500: no luck$"):
        list(http.stream_lines(url, {"fail": True}, timeout=5))


def test_a_body_past_the_limit_is_cut_there(server):
    reply = http.get(f"http://127.0.0.1:{server}/{'x' * 100}", timeout=2, max_body=20)
    assert reply.ok and len(reply.body) == 20


def test_polling_a_server_does_not_load_httpx(server):
    """The idle TUI polls through http.client only: httpx is loaded for one-off requests."""
    import subprocess
    import sys

    code = (
        "import sys; from sparktop.servers import http\n"
        f"c = http.Connection('127.0.0.1', {server})\n"
        "assert c.get('/metrics', timeout=2).ok and c.get('/health', timeout=2).ok\n"
        "assert 'httpx' not in sys.modules, 'the poller loaded httpx'\n"
        f"assert http.get('http://127.0.0.1:{server}/v1/models', timeout=2).ok\n"
        "assert 'httpx' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
