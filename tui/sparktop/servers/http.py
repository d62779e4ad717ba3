"""A small blocking HTTP client for polling servers: every call has a deadline, never raises.

The standard library's http.client keeps sparktop light (no extra import in the TUI's budget);
calls run on worker threads, so a server that hangs costs a thread for `timeout` seconds and
never the screen.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """What came back, or why nothing did (`error` is then a short phrase for the screen)."""

    status: int | None
    body: bytes = b""
    latency_s: float = 0.0
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def host_for_url(host: str) -> str:
    """Bracket IPv6 literals; map wildcard binds to loopback (that is where to reach them)."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def base_url(host: str, port: int) -> str:
    return f"http://{host_for_url(host)}:{port}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed without answering"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP reply ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
) -> Reply:
    """One request with a connect/read timeout and an overall deadline of ~2x timeout."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    data = None
    all_headers = {"Accept": "application/json", "User-Agent": "sparktop"}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    started = time.monotonic()
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
    )
    try:
        conn.request(method, path, body=data, headers=all_headers)
        resp = conn.getresponse()
        chunks = []
        size = 0
        deadline = started + 2 * timeout
        while True:
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY or time.monotonic() > deadline:
                break
        return Reply(
            status=resp.status,
            body=b"".join(chunks),
            latency_s=time.monotonic() - started,
            headers=tuple(resp.getheaders()),
        )
    except (OSError, http.client.HTTPException) as exc:
        return Reply(status=None, latency_s=time.monotonic() - started, error=_describe(exc))
    finally:
        conn.close()


class Connection:
    """A keep-alive connection to one server, for a poller that asks it every few seconds.

    Reusing the socket keeps a poll cycle cheap and avoids piling up TIME_WAIT sockets (which
    also make /proc/net/tcp slow to read). A reused socket the server has closed meanwhile is
    retried once on a fresh one. Not thread-safe: one poller owns it.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, path: str, *, timeout: float, headers: dict[str, str] | None = None) -> Reply:
        all_headers = {"Accept": "application/json", "User-Agent": "sparktop"}
        all_headers.update(headers or {})
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            else:
                self._conn.timeout = timeout
                if self._conn.sock is not None:
                    self._conn.sock.settimeout(timeout)
            started = time.monotonic()
            try:
                self._conn.request("GET", path, headers=all_headers)
                resp = self._conn.getresponse()
                body = resp.read(MAX_BODY)
                if resp.will_close or len(body) >= MAX_BODY:
                    self.close()
                return Reply(
                    status=resp.status,
                    body=body,
                    latency_s=time.monotonic() - started,
                    headers=tuple(resp.getheaders()),
                )
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                stale = isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if reused and attempt == 0 and stale:
                    continue
                elapsed = time.monotonic() - started
                return Reply(status=None, latency_s=elapsed, error=_describe(exc))
        return Reply(status=None, error="no answer")


def get(url: str, *, timeout: float = 2.0, headers: dict[str, str] | None = None) -> Reply:
    return request("GET", url, timeout=timeout, headers=headers)


def stream_lines(
    url: str, body: Any, *, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> Iterator[tuple[float, bytes]]:
    """POST and yield (monotonic time, line) as the server sends them (server-sent events).

    Raises OSError / http.client.HTTPException on failure; the caller reports it.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
    )
    all_headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    all_headers.update(headers or {})
    try:
        conn.request("POST", parts.path, body=json.dumps(body).encode(), headers=all_headers)
        resp = conn.getresponse()
        if resp.status != 200:
            text = resp.read(4096).decode("utf-8", "replace")
            raise http.client.HTTPException(f"HTTP {resp.status}: {text[:200]}")
        while True:
            line = resp.readline()
            if not line:
                return
            yield time.monotonic(), line.rstrip(b"\r\n")
    finally:
        conn.close()
