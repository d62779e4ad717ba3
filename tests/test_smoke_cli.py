"""`sparktop test` against loopback stand-ins: a socket that never answers, a server whose
replies carry control characters."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

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
