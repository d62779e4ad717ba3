"""Quality smoke: a few prompts per mode, answers kept beside the numbers, each judged by the
coherence check (the failure of 1–2-bit quants is gibberish and loops, not subtle errors)."""

from __future__ import annotations

from sparktop.servers import http
from sparktop.servers.coherence import check_coherence
from sparktop.servers.smoke import reply_text

PROMPTS: dict[str, tuple[str, ...]] = {
    "ask": (
        "What is the capital of Australia? Answer in one sentence.",
        "Explain in two sentences why the sky looks blue.",
    ),
    "code": ("Write a Python function fib(n) that returns the n-th Fibonacci number iteratively.",),
    "architect": (
        "In three short bullet points: how would you design a rate limiter for an HTTP API?",
    ),
    "debug": (
        "This Python code raises IndexError: xs = [1, 2]; print(xs[2]). Why, and how to fix it?",
    ),
}


def quality_smoke(
    base: str,
    model: str,
    modes: tuple[str, ...] = tuple(PROMPTS),
    max_tokens: int = 256,
    headers: dict[str, str] | None = None,
) -> list[dict]:
    """One chat completion per prompt; returns prompt, answer, coherence verdict, latency."""
    out = []
    for mode in modes:
        for prompt in PROMPTS.get(mode, ()):
            body = {"model": model, "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens}  # fmt: skip
            reply = http.request("POST", base + "/v1/chat/completions", body=body,
                                 timeout=300.0, headers=headers)  # fmt: skip
            answer = reply_text(reply.json() if reply.ok else None)
            verdict = check_coherence(answer) if reply.ok else None
            out.append({
                "mode": mode,
                "prompt": prompt,
                "answer": answer,
                "ok": bool(verdict and verdict.ok),
                "problems": list(verdict.problems)
                if verdict
                else [reply.error or f"HTTP {reply.status}"],
                "latency_s": reply.latency_s,
            })  # fmt: skip
    return out
