"""`sparktop test`: the three checks people do with curl, with latency, plus a coherence check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sparktop.servers import http
from sparktop.servers.coherence import Coherence, check_coherence
from sparktop.servers.printable import printable

PROMPT = "In one or two sentences: what is the capital of France, and why is it well known?"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    latency_s: float | None
    detail: str
    skipped: bool = False
    """Not run: an earlier check showed the server cannot answer (`detail` says which)."""

    def line(self) -> str:
        """`PASS  /health        3 ms  ok`, as both faces show a check."""
        return self.head() + self.detail

    def head(self) -> str:
        """The line up to the detail: mark, name, latency."""
        mark = "SKIP" if self.skipped else "PASS" if self.ok else "FAIL"
        latency = f"{self.latency_s * 1000:7.0f} ms" if self.latency_s is not None else ""
        return f"{mark}  {self.name:22} {latency:>10}  "


Progress = Callable[[str], None]
"""Told one line as each check starts and as it ends."""


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class SmokeResult:
    base_url: str
    model: str | None
    checks: tuple[Check, ...]
    reply: str = ""
    coherence: Coherence | None = None
    usage: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        coherent = self.coherence.ok if self.coherence is not None else False
        return all(c.ok for c in self.checks) and coherent

    def to_json(self) -> dict:
        return {
            "url": self.base_url,
            "model": self.model,
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
            "reply": self.reply,
            "coherent": self.coherence.ok if self.coherence else None,
            "coherence_problems": list(self.coherence.problems) if self.coherence else [],
            "usage": self.usage,
            "timings": self.timings,
        }


def reply_text(answer: object) -> str:
    """The assistant's text in a chat completion (reasoning models: the reasoning if no
    content), safe to print: its lines kept, any other control character shown, not sent."""
    return printable(_raw_reply(answer), newlines=True)


def _raw_reply(answer: object) -> str:
    try:
        message = answer["choices"][0]["message"]  # type: ignore[index]
        return str(message.get("content") or message.get("reasoning_content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def run_smoke(
    base_url: str,
    model: str | None = None,
    *,
    token: str | None = None,
    timeout: float = 120.0,
    max_tokens: int = 64,
    progress: Progress = _quiet,
) -> SmokeResult:
    """GET /health, GET /v1/models, POST /v1/chat/completions; judge the reply. When /health
    gets no answer at all (unreachable, timed out) the other two are skipped, not waited for."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks: list[Check] = []

    def done(check: Check) -> None:
        checks.append(check)
        progress(check.line())

    progress("GET /health …")
    health = http.get(base_url + "/health", timeout=10.0, headers=headers)
    done(Check("/health", health.ok, health.latency_s,
               "ok" if health.ok else (health.error or f"HTTP {health.status}")))  # fmt: skip
    if health.status is None:  # nothing answers there: the other checks would only wait
        why = f"skipped: /health failed ({health.error or 'no answer'})"
        for name in ("/v1/models", "/v1/chat/completions"):
            done(Check(name, False, None, why, skipped=True))
        return SmokeResult(base_url, model, tuple(checks))
    progress("GET /v1/models …")
    models = http.get(base_url + "/v1/models", timeout=10.0, headers=headers)
    ids: list[str] = []
    data = models.json() if models.ok else None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        ids = [str(m.get("id")) for m in data["data"] if isinstance(m, dict)]
    if model is None and ids:
        model = ids[0]
    listed = models.ok and (model in ids if model else bool(ids))
    if models.ok:
        detail = printable(f"lists {', '.join(ids) or 'nothing'}")
        if model and model not in ids:
            detail += f" (not {model})"
    else:
        detail = models.error or f"HTTP {models.status}"
    done(Check("/v1/models", listed, models.latency_s, detail))
    body = {
        "model": model or "default",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "stream": False,
        "seed": 42,  # the same model answers the same way: a test can be repeated
    }
    progress(f"POST /v1/chat/completions ({max_tokens} tokens at most, up to {timeout:.0f} s) …")
    chat = http.request(
        "POST", base_url + "/v1/chat/completions", body=body, timeout=timeout, headers=headers
    )
    usage: dict = {}
    timings: dict = {}
    answer = chat.json() if chat.ok else None
    reply = reply_text(answer)
    if isinstance(answer, dict):
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        timings = answer.get("timings") if isinstance(answer.get("timings"), dict) else {}
    if chat.ok and answer is not None:
        tokens = usage.get("completion_tokens")
        detail = f"{tokens} tokens" if tokens is not None else "answered"
        done(Check("/v1/chat/completions", True, chat.latency_s, detail))
    else:
        detail = chat.error or f"HTTP {chat.status}: {printable(chat.text()[:120])}"
        done(Check("/v1/chat/completions", False, chat.latency_s, detail))
    # judged as sent: control characters in a reply are part of what makes it garbage
    coherence = check_coherence(_raw_reply(answer)) if chat.ok else None
    return SmokeResult(base_url, model, tuple(checks), reply, coherence, usage, timings)
