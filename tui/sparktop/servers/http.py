"""HTTP for polling and benchmarking servers: every call has a deadline and a poll never
raises.

One-off requests, the streaming bench client and the fleet's agent client go through httpx
(per-call httpx.Timeout); the poller's keep-alive `Connection` stays on http.client, which costs
a third of httpx's CPU per GET on the TUI's idle path (see `Connection`). httpx is imported on
first use, so neither the first frame nor an idle TUI pays for it. What went wrong is told in
one place, `describe`: users see the same short phrases ("connection refused", "timed out", …)
whichever library raised.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparktop.urls import base_url, host_for_url

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_BODY", "Connection", "Reply", "RequestFailed", "base_url", "describe", "get",
    "host_for_url", "request", "stream_lines",
]  # fmt: skip

MAX_BODY = 8 * 1024 * 1024
_HEADERS = {"Accept": "application/json", "User-Agent": "sparktop"}


@dataclass(frozen=True)
class Reply:
    """What came back, or why nothing did (`error` is then a short phrase for the screen)."""

    status: int | None
    body: bytes = b""
    latency_s: float = 0.0
    error: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    cause: str | None = None
    """The operating system's own words for a failed connection ("Connection refused"),
    for messages that quote them; None when it gave none (a timeout, a bad reply)."""

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


class RequestFailed(OSError):
    """A request that got no usable answer: str() is the phrase for the screen (as in
    `Reply.error`), `cause` the operating system's words where there are some. An OSError, so
    callers that caught the standard library's socket errors still catch it."""

    def __init__(self, phrase: str, cause: str | None = None) -> None:
        super().__init__(phrase)
        self.cause = cause


def _os_error(exc: BaseException) -> OSError | None:
    """The socket error under httpx's own exception (httpx → httpcore → OSError)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, OSError) and not isinstance(current, RequestFailed):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def describe(exc: BaseException) -> str:
    """The short phrase users see for a failed request: the one place where httpx's and the
    socket's exceptions are turned into words, the same words whichever raised."""
    httpx = sys.modules.get("httpx")  # not imported for the poller's socket errors
    if isinstance(exc, RequestFailed):
        return str(exc)
    if httpx is not None and isinstance(exc, httpx.TimeoutException):
        return "timed out"
    os_error = _os_error(exc)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(os_error, ConnectionResetError):
        return "connection reset"
    if (
        httpx is not None
        and isinstance(exc, httpx.RemoteProtocolError)
        and "without sending a response" in str(exc)
    ):
        return "connection reset"  # what http.client's RemoteDisconnected has always read as
    if isinstance(exc, http.client.HTTPException) or (
        httpx is not None and isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError)
    ):
        return f"bad HTTP reply ({type(exc).__name__})"
    if os_error is not None and os_error.strerror:
        return os_error.strerror.lower()
    return type(exc).__name__


def _failure(exc: BaseException) -> RequestFailed:
    os_error = _os_error(exc)
    cause = os_error.strerror if os_error is not None and os_error.strerror else None
    if isinstance(os_error, socket.timeout | TimeoutError):
        cause = None
    return RequestFailed(describe(exc), cause)


@functools.cache
def _tls(verified: bool) -> ssl.SSLContext:
    """One TLS context per process: httpx builds one for every client, and the verified kind
    (certifi's bundle) costs ~20 ms and a few MiB; plain-HTTP clients never use theirs."""
    if verified:
        import httpx

        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _client(
    url: str, *, keep_alive: bool = False, trust_env: bool = False, follow_redirects: bool = False
) -> httpx.Client:
    """A client for `url`'s server. Proxies from the environment only where asked
    (`trust_env`): servers on this box or the LAN are reached directly."""
    import httpx

    return httpx.Client(
        verify=_tls(url.startswith("https:") or follow_redirects),
        trust_env=trust_env,
        follow_redirects=follow_redirects,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1 if keep_alive else 0),
    )


def _exchange(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    body: Any,
    headers: dict[str, str] | None,
    timeout: float,
    max_body: int,
) -> Reply:
    """One request; raises httpx's exceptions or RequestFailed. The body is read until
    `max_body` (kept, cut there) or an overall deadline of 2x timeout (a server trickling
    bytes is as good as a hung one)."""
    import httpx

    all_headers = dict(_HEADERS)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    started = time.monotonic()
    deadline = started + 2 * timeout
    with client.stream(
        method, url, content=data, headers=all_headers, timeout=httpx.Timeout(timeout)
    ) as resp:
        chunks = []
        size = 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= max_body:
                break  # leaving unread closes the connection
            if time.monotonic() > deadline:
                raise RequestFailed("timed out")
        return Reply(
            status=resp.status_code,
            body=b"".join(chunks)[:max_body],
            latency_s=time.monotonic() - started,
            headers=tuple(resp.headers.multi_items()),
        )


def _errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.HTTPError, httpx.InvalidURL, OSError)


def request(
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
    max_body: int = MAX_BODY,
    trust_env: bool = False,
    follow_redirects: bool = False,
) -> Reply:
    """One request on its own connection, with a connect/read timeout and an overall
    deadline of ~2x timeout. Never raises: a failure is a Reply with `error` set."""
    client = _client(url, trust_env=trust_env, follow_redirects=follow_redirects)
    started = time.monotonic()
    try:
        with client:
            return _exchange(
                client, method, url, body=body, headers=headers, timeout=timeout,
                max_body=max_body,
            )  # fmt: skip
    except _errors() as exc:
        failure = _failure(exc)
        return Reply(
            status=None,
            latency_s=time.monotonic() - started,
            error=str(failure),
            cause=failure.cause,
        )


class Connection:
    """A keep-alive connection to one server, for a poller that asks it every few seconds.

    Reusing the socket keeps a poll cycle cheap and avoids piling up TIME_WAIT sockets (which
    also make /proc/net/tcp slow to read). A reused socket the server has closed meanwhile is
    retried once on a fresh one. Not thread-safe: one poller owns it.

    This one stays on the standard library's http.client: it runs for every server every
    2-10 s while the TUI idles, and a GET through httpx costs three times the CPU (2.0 vs
    0.64 ms, tests/bench/http_get_cost.py), which puts the idle TUI above btop's CPU
    (docs/benchmarks.md, 2026-11-29).
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
        all_headers = dict(_HEADERS)
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
                body = _read_until(resp, started + 2 * timeout, MAX_BODY)
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
                failure = _failure(exc)
                elapsed = time.monotonic() - started
                return Reply(
                    status=None, latency_s=elapsed, error=str(failure), cause=failure.cause
                )
        return Reply(status=None, error="no answer")


def _read_until(resp: http.client.HTTPResponse, deadline: float, limit: int) -> bytes:
    """The body up to `limit` bytes; RequestFailed("timed out") past the deadline."""
    chunks = []
    size = 0
    while size < limit:
        chunk = resp.read1(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline and not resp.isclosed():
            raise RequestFailed("timed out")
    if size < limit and not resp.isclosed():
        resp.read()  # the body is done: this marks the response finished, the socket reusable
    return b"".join(chunks)


def get(
    url: str,
    *,
    timeout: float = 2.0,
    headers: dict[str, str] | None = None,
    max_body: int = MAX_BODY,
    trust_env: bool = False,
    follow_redirects: bool = False,
) -> Reply:
    return request(
        "GET", url, timeout=timeout, headers=headers, max_body=max_body, trust_env=trust_env,
        follow_redirects=follow_redirects,
    )  # fmt: skip


def stream_lines(
    url: str, body: Any, *, timeout: float = 30.0, headers: dict[str, str] | None = None
) -> Iterator[tuple[float, bytes]]:
    """POST and yield (monotonic time, line) as the server sends them (server-sent events).

    Raises RequestFailed (an OSError; its text as in `Reply.error`, or "HTTP 500: …" for an
    answer other than 200). Closing the generator early closes the connection, which is how
    a server is told to stop generating.
    """
    import httpx

    all_headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    all_headers.update(headers or {})
    try:
        with (
            _client(url) as client,
            client.stream(
                "POST", url, content=json.dumps(body).encode(), headers=all_headers,
                timeout=httpx.Timeout(timeout),
            ) as resp,
        ):  # fmt: skip
            if resp.status_code != 200:
                text = b"".join(_upto(resp.iter_bytes(), 4096)).decode("utf-8", "replace")
                raise RequestFailed(f"HTTP {resp.status_code}: {text[:200]}")
            pending = b""
            for chunk in resp.iter_bytes():
                now = time.monotonic()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    yield now, line.rstrip(b"\r")
            if pending:
                yield time.monotonic(), pending.rstrip(b"\r")
    except RequestFailed:
        raise
    except _errors() as exc:
        raise _failure(exc) from None


def _upto(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        yield chunk
        size += len(chunk)
        if size >= limit:
            return
