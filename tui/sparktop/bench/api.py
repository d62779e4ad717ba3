"""API benchmark of a served model: streaming completions, timed from the client's side.

For each repetition: a prompt of an exact length (llama.cpp: token ids from its /tokenize;
elsewhere ~4 characters per token, approximate) sent to streaming `/v1/completions` with
`max_tokens` = the generation length. Measured per request:
- TTFT: request sent → first generated text;
- prefill tok/s: prompt tokens / TTFT (includes the network and first decode step);
- decode tok/s: (generated tokens − 1) / (last token time − first token time);
- end-to-end latency.
Where llama.cpp returns its own `timings` (prompt_per_second, predicted_per_second) they are
kept beside the client's figures. The first request is a warm-up and is not counted.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sparktop.bench.noise import noise_note
from sparktop.servers import http

FILLER = (
    "The quick brown fox jumps over the lazy dog while the patient engineer measures how fast "
    "the model reads and writes tokens on a unified memory machine. "
)


class BenchError(Exception):
    pass


class BenchCancelled(Exception):
    pass


@dataclass(frozen=True)
class Sample:
    prompt_tokens: int
    generated_tokens: int
    ttft_s: float
    decode_s: float
    total_s: float
    server_prompt_tps: float | None = None
    server_decode_tps: float | None = None

    @property
    def prefill_tps(self) -> float:
        return self.prompt_tokens / self.ttft_s if self.ttft_s > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        steps = self.generated_tokens - 1
        return steps / self.decode_s if self.decode_s > 0 and steps > 0 else 0.0


def _stat(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "stdev": None}
    return {
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


@dataclass
class ApiResult:
    url: str
    model: str
    prompt_tokens: int
    gen_tokens: int
    exact_prompt: bool
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict:
        s = self.samples
        server_pp = [x.server_prompt_tps for x in s if x.server_prompt_tps]
        server_tg = [x.server_decode_tps for x in s if x.server_decode_tps]
        return {
            "repetitions": len(s),
            "ttft_s": _stat([x.ttft_s for x in s]),
            "prefill_tps": _stat([x.prefill_tps for x in s]),
            "decode_tps": _stat([x.decode_tps for x in s]),
            "latency_s": _stat([x.total_s for x in s]),
            "server_prefill_tps": _stat(server_pp),
            "server_decode_tps": _stat(server_tg),
        }

    def noise(self) -> str | None:
        """Which figures are noisy (sparktop.bench.noise), e.g. "decode ±27%"; None if none."""
        s = self.summary()
        return noise_note(
            (name, s[key]["median"], s[key]["stdev"])
            for name, key in (("TTFT", "ttft_s"), ("prefill", "prefill_tps"),
                              ("decode", "decode_tps"))
        )  # fmt: skip

    def to_json(self) -> dict:
        return {
            "url": self.url,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "gen_tokens": self.gen_tokens,
            "exact_prompt": self.exact_prompt,
            "summary": self.summary(),
            "noisy": self.noise(),
            "samples": [
                {
                    "prompt_tokens": x.prompt_tokens,
                    "generated_tokens": x.generated_tokens,
                    "ttft_s": x.ttft_s,
                    "prefill_tps": x.prefill_tps,
                    "decode_tps": x.decode_tps,
                    "total_s": x.total_s,
                    "server_prefill_tps": x.server_prompt_tps,
                    "server_decode_tps": x.server_decode_tps,
                }
                for x in self.samples
            ],
        }


def exact_prompt(base: str, n_tokens: int, timeout: float = 30.0) -> list[int] | None:
    """Token ids of exactly `n_tokens` from llama.cpp's /tokenize, or None if unavailable."""
    text = FILLER
    for _ in range(12):
        reply = http.request(
            "POST", base + "/tokenize", body={"content": text, "add_special": False},
            timeout=timeout,
        )  # fmt: skip
        data = reply.json() if reply.ok else None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            return None
        tokens = [t if isinstance(t, int) else t.get("id") for t in data["tokens"]]
        if len(tokens) >= n_tokens:
            return tokens[:n_tokens]
        text = text * 2
    return None


Progress = Callable[[str, ApiResult, Sample], None]
"""Told after each request (the warm-up too): its label ("warm-up", "rep 2/3"), the run so
far and that request's own figures, so a repetition's line carries its own numbers."""


def run_api_bench(
    base: str,
    model: str,
    *,
    prompt_tokens: int = 512,
    gen_tokens: int = 128,
    repetitions: int = 3,
    warmup: bool = True,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 600.0,
) -> ApiResult:
    ids = exact_prompt(base, prompt_tokens)
    prompt: str | list[int] = (
        ids if ids is not None else FILLER * (prompt_tokens * 4 // len(FILLER) + 1)
    )
    if isinstance(prompt, str):
        prompt = prompt[: prompt_tokens * 4]
    result = ApiResult(base, model, prompt_tokens, gen_tokens, ids is not None)
    labels = (["warm-up"] if warmup else []) + [
        f"rep {n}/{repetitions}" for n in range(1, repetitions + 1)
    ]
    for label in labels:
        if cancel is not None and cancel.is_set():
            raise BenchCancelled()
        sample = _one(base, model, prompt, gen_tokens, cancel, timeout)
        if label != "warm-up":
            result.samples.append(sample)
        if progress:
            progress(label, result, sample)
    return result


def _one(base: str, model: str, prompt: str | list[int], gen_tokens: int,
         cancel: threading.Event | None, timeout: float) -> Sample:  # fmt: skip
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": gen_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        # llama.cpp: process the whole prompt every time, and generate exactly max_tokens
        "cache_prompt": False,
        "ignore_eos": True,
    }
    sent = time.monotonic()
    first: float | None = None
    last: float | None = None
    chunks = 0
    usage: dict = {}
    timings: dict = {}
    try:
        for now, line in http.stream_lines(base + "/v1/completions", body, timeout=timeout):
            if cancel is not None and cancel.is_set():
                raise BenchCancelled()  # leaving the loop closes the connection: server stops
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            if isinstance(event.get("timings"), dict):
                timings = event["timings"]
            for choice in event.get("choices") or []:
                # one event per generated token; its text may be empty while a multi-byte
                # character is incomplete, so the event itself is what is timed
                if choice.get("finish_reason") is None or choice.get("text"):
                    chunks += 1
                    first = first if first is not None else now
                    last = now
    except http.RequestFailed as exc:
        raise BenchError(f"{base}: {exc.cause or exc}") from None
    end = time.monotonic()
    if first is None or last is None:
        raise BenchError(f"{base}: the server streamed no text")
    generated = int(usage.get("completion_tokens") or chunks)
    prompt_n = int(usage.get("prompt_tokens") or (len(prompt) if isinstance(prompt, list) else 0))
    return Sample(
        prompt_tokens=prompt_n,
        generated_tokens=generated,
        ttft_s=first - sent,
        decode_s=last - first,
        total_s=end - sent,
        server_prompt_tps=timings.get("prompt_per_second"),
        server_decode_tps=timings.get("predicted_per_second"),
    )


def context_of(base: str) -> int | None:
    """The context a server gives one request (llama.cpp /props n_ctx; vLLM max_model_len)."""
    props = http.get(base + "/props", timeout=10).json()
    if isinstance(props, dict):
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
        if isinstance(n_ctx, int):
            return n_ctx
    models = http.get(base + "/v1/models", timeout=10).json()
    for item in (models or {}).get("data") or [] if isinstance(models, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("max_model_len"), int):
            return item["max_model_len"]
    return None


DEPTHS = (0, 4096, 16384, 32768, 65536, 131072)


def split_depths(
    depths: tuple[int, ...], prompt_tokens: int, gen_tokens: int, context: int | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The depths whose request (depth + prompt + generation) fits `context`, and the rest."""
    limit = context or 0
    fits = tuple(d for d in depths if d + prompt_tokens + gen_tokens <= limit)
    return fits, tuple(d for d in depths if d not in fits)


def depth_sweep(
    base: str,
    model: str,
    *,
    prompt_tokens: int = 512,
    gen_tokens: int = 128,
    repetitions: int = 1,
    depths: tuple[int, ...] = DEPTHS,
    context: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[tuple[int, ApiResult]]:
    """pp/tg with `depth` tokens of context ahead of the measured prompt, for the depths that
    fit the context the server gives a request (the prompt is depth + prompt_tokens long)."""
    fits, _ = split_depths(depths, prompt_tokens, gen_tokens, context or context_of(base))
    out = []
    for depth in fits:
        result = run_api_bench(
            base, model, prompt_tokens=depth + prompt_tokens, gen_tokens=gen_tokens,
            repetitions=repetitions, warmup=False, cancel=cancel,
            progress=(lambda step, r, s, d=depth: progress(f"depth {d}: {step}", r, s))
            if progress else None,
        )  # fmt: skip
        out.append((depth, result))
    return out


def concurrency_sweep(
    base: str,
    model: str,
    *,
    streams: tuple[int, ...] = (1, 2, 4, 8),
    prompt_tokens: int = 128,
    gen_tokens: int = 64,
    cancel: threading.Event | None = None,
) -> list[dict]:
    """N requests at once → aggregate generated tok/s over the wall time (slots permitting)."""
    ids = exact_prompt(base, prompt_tokens)
    prompt: str | list[int] = ids if ids is not None else FILLER[: prompt_tokens * 4]
    rows = []
    for n in streams:
        samples: list[Sample] = []
        errors: list[str] = []

        def one(samples: list[Sample] = samples, errors: list[str] = errors) -> None:
            try:
                samples.append(_one(base, model, prompt, gen_tokens, cancel, 600.0))
            except (BenchError, BenchCancelled) as exc:
                errors.append(str(exc) or "cancelled")

        threads = [threading.Thread(target=one) for _ in range(n)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        if cancel is not None and cancel.is_set():
            raise BenchCancelled()
        generated = sum(s.generated_tokens for s in samples)
        rows.append({
            "streams": n,
            "completed": len(samples),
            "errors": errors,
            "wall_s": wall,
            "aggregate_decode_tps": generated / wall if wall > 0 else 0.0,
            "per_stream_decode_tps": statistics.median([s.decode_tps for s in samples])
            if samples else None,
        })  # fmt: skip
    return rows
