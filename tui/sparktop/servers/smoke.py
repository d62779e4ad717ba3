"""`sparktop test`: the three checks people do with curl, with latency, plus a coherence check."""

from __future__ import annotations

from dataclasses import dataclass, field

from sparktop.servers import http
from sparktop.servers.coherence import Coherence, check_coherence

PROMPT = "In one or two sentences: what is the capital of France, and why is it well known?"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    latency_s: float | None
    detail: str


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
    """The assistant's text in a chat completion (reasoning models: the reasoning if no content)."""
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
) -> SmokeResult:
    """GET /health, GET /v1/models, POST /v1/chat/completions; judge the reply."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks = []
    health = http.get(base_url + "/health", timeout=10.0, headers=headers)
    checks.append(
        Check(
            "/health",
            health.ok,
            health.latency_s,
            "ok" if health.ok else (health.error or f"HTTP {health.status}"),
        )
    )
    models = http.get(base_url + "/v1/models", timeout=10.0, headers=headers)
    ids: list[str] = []
    data = models.json() if models.ok else None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        ids = [str(m.get("id")) for m in data["data"] if isinstance(m, dict)]
    if model is None and ids:
        model = ids[0]
    listed = models.ok and (model in ids if model else bool(ids))
    if models.ok:
        detail = f"lists {', '.join(ids) or 'nothing'}"
        if model and model not in ids:
            detail += f" (not {model})"
    else:
        detail = models.error or f"HTTP {models.status}"
    checks.append(Check("/v1/models", listed, models.latency_s, detail))
    body = {
        "model": model or "default",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "stream": False,
        "seed": 42,  # the same model answers the same way: a test can be repeated
    }
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
        checks.append(Check("/v1/chat/completions", True, chat.latency_s, detail))
    else:
        detail = chat.error or f"HTTP {chat.status}: {chat.text()[:120]}"
        checks.append(Check("/v1/chat/completions", False, chat.latency_s, detail))
    coherence = check_coherence(reply) if chat.ok else None
    return SmokeResult(base_url, model, tuple(checks), reply, coherence, usage, timings)
