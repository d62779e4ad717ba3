"""`sparktop test` against loopback stand-ins: a socket that never answers, a server whose
replies carry control characters."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_cli


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_skips_the_later_checks(silent_port):
    # /health waits its 10 s; before, /v1/models and the chat then waited 130 s more
    result = run_cli("test", f"http://127.0.0.1:{silent_port}", timeout=60)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  /health" in out and "timed out" in out
    assert "SKIP  /v1/models" in out and "SKIP  /v1/chat/completions" in out
    assert "skipped: /health failed (timed out)" in out
    # progress, as each check starts and ends, on stderr
    progress = result.stderr.splitlines()
    assert any("GET /health …" in line for line in progress)
    assert any("FAIL  /health" in line for line in progress)
    assert any("SKIP  /v1/chat/completions" in line for line in progress)


def test_an_unreachable_url_is_one_failed_check_and_two_skipped():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("test", f"http://127.0.0.1:{port}", "--json", timeout=30)
    assert result.returncode == 1
    checks = json.loads(result.stdout)["checks"]
    assert [(c["name"], c["ok"], c["skipped"]) for c in checks] == [
        ("/health", False, False),
        ("/v1/models", False, True),
        ("/v1/chat/completions", False, True),
    ]
    assert checks[0]["detail"] == "connection refused"


NASTY = "\x1b]0;owned\x07\x1b[2J\x19\x05\x07\x9b"
"""What a hostile or broken server may send: a title change, a screen clear, C0 and C1."""


class NastyHandler(BaseHTTPRequestHandler):
    """/health and /v1/models answer; the chat answers with control characters in the reply
    (or, with `fail`, in an error body); the model id carries some too."""

    fail = False

    def _send(self, status: int, doc: object) -> None:
        """`doc` as JSON, or a str as it is (a proxy's plain-text error page)."""
        plain = isinstance(doc, str)
        body = (doc if plain else json.dumps(doc)).encode()
        self.send_response(status)
        headers = {"Content-Type": "text/plain" if plain else "application/json"}
        headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(200, {"object": "list", "data": [{"id": f"tiny{NASTY}"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.fail:
            self._send(500, f"broken{NASTY}")
            return
        reply = f"Paris{NASTY} is the capital of France,\tknown for the Eiffel Tower.\r\n"
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": reply}}],
                         "usage": {"completion_tokens": 12}})  # fmt: skip

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["reply", "error-body"])
def nasty_url(request) -> Iterator[str]:
    handler = type("Handler", (NastyHandler,), {"fail": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def control_characters(text: str) -> list[str]:
    """The control characters in `text` other than the newlines ending its lines."""
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_server_text_reaches_the_terminal_without_control_characters(nasty_url):
    result = run_cli("test", nasty_url, timeout=60)
    assert control_characters(result.stdout) == [] and control_characters(result.stderr) == []
    out = result.stdout
    assert "lists tiny\\x1b]0;owned" in out  # shown, not sent
    if "reply:" in out:
        assert "reply: Paris\\x1b]0;owned\\x07\\x1b[2J\\x19\\x05\\x07\\x9b is the capital" in out
    else:
        assert "HTTP 500: broken\\x1b]0;owned\\x07" in out


def test_bench_quality_answers_are_kept_without_control_characters(nasty_url):
    from sparktop.bench.quality import quality_smoke

    for item in quality_smoke(nasty_url, "tiny", ("ask",)):
        assert control_characters(item["answer"]) == []


def test_server_timings_that_are_not_numbers_do_not_break_the_report():
    """`timings` is the server's text: a rate that is not a number leaves the line out."""
    from sparktop.actions.servers import TestOutcome
    from sparktop.servers.smoke import SmokeResult

    def report(timings: dict) -> list[str]:
        result = SmokeResult("http://x", "m", (), "hi", None, {}, timings)
        return TestOutcome("http://x", result).lines()

    odd = report({"prompt_per_second": "fast", "predicted_per_second": 3.0})
    assert not any("server timings" in line for line in odd)
    fine = report({"prompt_per_second": 10, "predicted_per_second": 3.0})
    assert "  server timings: prompt 10.0 t/s, generation 3.0 t/s" in fine
