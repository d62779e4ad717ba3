"""API benchmark of a served model: streaming completions, timed from the client's side.

For each repetition: a prompt of an exact length (token ids from the server's /tokenize, in
llama.cpp's or vLLM's form; elsewhere ~4 characters per token, approximate) sent to streaming
`/v1/completions` with `max_tokens` = the generation length. Measured per request, by the
client:
- TTFT: request sent → first generated text;
- prefill tok/s: prompt tokens / TTFT (includes the network and first decode step);
- decode tok/s: (generated tokens − 1) / (last token time − first token time);
- end-to-end latency.
The server's own figures are kept beside them, from one of two sources (`server_source`):
llama.cpp's `timings` in the reply (prompt_per_second, predicted_per_second), or the
engine's /metrics histograms and token counters read before and after each request (vLLM:
time to first token, prefill and decode time). The first request is a warm-up and is not
counted. Each request carries a fresh `cache_salt`, so vLLM's prefix cache does not answer a
repeated prompt (llama.cpp gets `cache_prompt: false`).
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sparktop.bench.noise import noise_note
from sparktop.engines import MetricNames
from sparktop.servers import http
from sparktop.servers.metrics import first, parse, totals

FILLER = (
    "The quick brown fox jumps over the lazy dog while the patient engineer measures how fast "
    "the model reads and writes tokens on a unified memory machine. "
)


REPLY_TIMINGS = "the server's timings in each reply"
METRICS_DELTAS = "the server's /metrics, read before and after each request"
"""Where the server's own figures come from (ApiResult.server_source)."""


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
    server_ttft_s: float | None = None
    server_source: str | None = None
    """Where the server_* figures come from: REPLY_TIMINGS or METRICS_DELTAS."""

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

    @property
    def server_source(self) -> str | None:
        """Where the server's own figures come from (None: the server gave none)."""
        return next((x.server_source for x in self.samples if x.server_source), None)

    def summary(self) -> dict:
        s = self.samples
        server_pp = [x.server_prompt_tps for x in s if x.server_prompt_tps]
        server_tg = [x.server_decode_tps for x in s if x.server_decode_tps]
        server_ttft = [x.server_ttft_s for x in s if x.server_ttft_s]
        return {
            "repetitions": len(s),
            "ttft_s": _stat([x.ttft_s for x in s]),
            "prefill_tps": _stat([x.prefill_tps for x in s]),
            "decode_tps": _stat([x.decode_tps for x in s]),
            "latency_s": _stat([x.total_s for x in s]),
            "server_prefill_tps": _stat(server_pp),
            "server_decode_tps": _stat(server_tg),
            "server_ttft_s": _stat(server_ttft),
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
            "client_source": "timed by sparktop over the streamed reply",
            "server_source": self.server_source,
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
                    "server_ttft_s": x.server_ttft_s,
                }
                for x in self.samples
            ],
        }


TokenizeBody = Callable[[str, str], dict]
TOKENIZE_FORMS: tuple[TokenizeBody, ...] = (
    lambda text, model: {"content": text, "add_special": False},  # llama.cpp
    lambda text, model: {"model": model, "prompt": text, "add_special_tokens": False},  # vLLM
)
"""/tokenize bodies of the engines that have one; both answer {"tokens": [...]}."""


def _tokens(base: str, body: dict, timeout: float) -> list[int] | None:
    reply = http.request("POST", base + "/tokenize", body=body, timeout=timeout)
    data = reply.json() if reply.ok else None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        return None
    return [t if isinstance(t, int) else t.get("id") for t in data["tokens"]]


def exact_prompt(
    base: str, n_tokens: int, timeout: float = 30.0, model: str = ""
) -> list[int] | None:
    """Token ids of exactly `n_tokens` from the server's /tokenize (llama.cpp's form, else
    vLLM's, which names the model), or None if it has none."""
    form = next((f for f in TOKENIZE_FORMS if _tokens(base, f("Hi", model), timeout)), None)
    if form is None:
        return None
    text = FILLER
    for _ in range(12):
        tokens = _tokens(base, form(text, model), timeout)
        if tokens is None:
            return None
        if len(tokens) >= n_tokens:
            return tokens[:n_tokens]
        text = text * 2
    return None


class ServerMetrics:
    """The server's own figures for one request from its /metrics: histogram sums and
    counts and the token counters, read before and after (requests run one at a time)."""

    def __init__(self, base: str, names: MetricNames) -> None:
        self.base, self.names = base, names

    def usable(self) -> bool:
        """Does the server export the histograms these figures need?"""
        values = self.read()
        return bool(values) and self._sum(values, self.names.decode_seconds) is not None

    def read(self) -> dict[str, float]:
        reply = http.get(self.base + "/metrics", timeout=10)
        return totals(parse(reply.text())) if reply.ok else {}

    @staticmethod
    def _sum(values: dict[str, float], names: tuple[str, ...]) -> tuple[float, float] | None:
        total = first(values, *(n + "_sum" for n in names))
        count = first(values, *(n + "_count" for n in names))
        return None if total is None or count is None else (total, count)

    def after(self, before: dict[str, float], wait_s: float = 5.0) -> dict[str, float | None]:
        """Figures of the one request since `before` (waits until /metrics has counted a
        request, or shows a reset: a restarted server's counters start again)."""
        deadline = time.monotonic() + wait_s
        while True:
            now = self.read()
            counted = self._counted(before, now)
            if (counted is not None and counted != 0) or time.monotonic() >= deadline:
                return self.figures(before, now)
            time.sleep(0.05)

    def _counted(self, before: dict[str, float], now: dict[str, float]) -> float | None:
        """Requests the decode histogram counted since `before` (negative after a reset)."""
        decode = self._delta(before, now, self.names.decode_seconds)
        return None if decode is None else decode[1]

    def _delta(
        self, before: dict[str, float], now: dict[str, float], names: tuple[str, ...]
    ) -> tuple[float, float] | None:
        """(Δsum, Δcount) of a histogram between the two readings."""
        a, b = self._sum(before, names), self._sum(now, names)
        return None if a is None or b is None else (b[0] - a[0], b[1] - a[1])

    def figures(self, before: dict[str, float], now: dict[str, float]) -> dict[str, float | None]:
        """TTFT = Δsum/Δcount; prefill = Δprompt tokens / Δprefill time; decode =
        (Δgenerated − Δrequests) / Δdecode time (the first token is the prefill's). Only
        when exactly the bench's one request was counted: another client's requests in the
        same window (or a reset) would be mixed in, so then there are none."""
        n = self.names
        out: dict[str, float | None] = {
            "server_ttft_s": None, "server_prompt_tps": None, "server_decode_tps": None,
        }  # fmt: skip
        decode = self._delta(before, now, n.decode_seconds)
        if decode is None or decode[1] != 1:
            return out

        def counter(names: tuple[str, ...]) -> float | None:
            a, b = first(before, *names), first(now, *names)
            return None if a is None or b is None else b - a

        ttft = self._delta(before, now, n.ttft_seconds)
        prefill = self._delta(before, now, n.prefill_seconds)
        prompt, generated = counter(n.prompt_tokens), counter(n.generated_tokens)
        if ttft and ttft[1] > 0:
            out["server_ttft_s"] = ttft[0] / ttft[1]
        if prefill and prefill[0] > 0 and prompt:
            out["server_prompt_tps"] = prompt / prefill[0]
        if decode[0] > 0 and generated:
            out["server_decode_tps"] = (generated - decode[1]) / decode[0]
        return out


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
    metrics: MetricNames | None = None,
) -> ApiResult:
    """`metrics`: the engine's names, for its own figures from /metrics (when it has
    histograms for them and gives no timings in the reply)."""
    ids = exact_prompt(base, prompt_tokens, model=model)
    server = ServerMetrics(base, metrics) if metrics and metrics.decode_seconds else None
    if server is not None and not server.usable():
        server = None
    prompt: str | list[int] = (
        ids if ids is not None else FILLER * (prompt_tokens * 4 // len(FILLER) + 1)
    )
    if isinstance(prompt, str):
        prompt = prompt[: prompt_tokens * 4]
    result = ApiResult(base, model, prompt_tokens, gen_tokens, ids is not None)
    labels = (["warm-up"] if warmup else []) + [
        f"rep {n}/{repetitions}" for n in range(1, repetitions + 1)
    ]
    salt = _Salt()
    for label in labels:
        if cancel is not None and cancel.is_set():
            raise BenchCancelled()
        before = server.read() if server is not None else {}
        sample = _one(base, model, prompt, gen_tokens, cancel, timeout, salt)
        if server is not None and sample.server_source is None:
            figures = server.after(before)
            if any(value is not None for value in figures.values()):
                sample = replace(sample, **figures, server_source=METRICS_DELTAS)
        if label != "warm-up":
            result.samples.append(sample)
        if progress:
            progress(label, result, sample)
    return result


class _Salt:
    """Whether one run's server takes vLLM's `cache_salt`: refused by name once (vLLM's
    older V0 engine answers 400), the run's later requests go without it."""

    def __init__(self) -> None:
        self.taken = True


def _one(base: str, model: str, prompt: str | list[int], gen_tokens: int,
         cancel: threading.Event | None, timeout: float, salt: _Salt) -> Sample:  # fmt: skip
    if salt.taken:
        try:
            return _request(base, model, prompt, gen_tokens, cancel, timeout, salted=True)
        except BenchError as exc:
            if "cache_salt" not in str(exc):
                raise
        salt.taken = False  # refused by name: ask again without, and not again this run
    return _request(base, model, prompt, gen_tokens, cancel, timeout, salted=False)


def _request(
    base: str,
    model: str,
    prompt: str | list[int],
    gen_tokens: int,
    cancel: threading.Event | None,
    timeout: float,
    *,
    salted: bool,
) -> Sample:
    body: dict[str, object] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": gen_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        # llama.cpp: process the whole prompt every time, and generate exactly max_tokens
        "cache_prompt": False,
        "ignore_eos": True,
    }
    if salted:  # vLLM: a fresh salt keeps its prefix cache from answering the repeated prompt
        body["cache_salt"] = uuid.uuid4().hex
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
        raise BenchError(f"{base}: {error_text(exc.cause or str(exc))}") from None
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
        server_ttft_s=timings["prompt_ms"] / 1000 if timings.get("prompt_ms") else None,
        server_source=REPLY_TIMINGS if timings else None,
    )


MESSAGE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)("?)')
"""An error body's message, also in a body cut short (the closing quote then missing)."""


def error_text(text: str) -> str:
    """`HTTP 400: {"error": {"message": "…"}}` as `HTTP 400: …`: the message of an error body
    in OpenAI's, llama.cpp's or vLLM's shape, on one line; any other text as it is."""
    head, sep, body = text.partition(": ")
    if not (sep and head.startswith("HTTP ")):
        return text
    message = _message(body)
    return f"{head}: {' '.join(message.split())}" if message else text


def _message(body: str) -> str | None:
    """error.message (OpenAI, llama.cpp, vLLM), error as text, or message (older vLLM)."""
    try:
        doc = json.loads(body)
    except ValueError:  # not JSON, or cut short: the message's own text, if it is there
        match = MESSAGE.search(body)
        if match is None:
            return None
        text = _unescaped(match.group(1))
        return text if match.group(2) else text + " …"
    if not isinstance(doc, dict):
        return None
    error = doc.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    message = error if isinstance(error, str) else doc.get("message")
    return message if isinstance(message, str) and message.strip() else None


def _unescaped(text: str) -> str:
    """A JSON string's text without its escapes (as it is when one was cut in half)."""
    try:
        return str(json.loads(f'"{text}"'))
    except ValueError:
        return text


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
    metrics: MetricNames | None = None,
) -> list[tuple[int, ApiResult]]:
    """pp/tg with `depth` tokens of context ahead of the measured prompt, for the depths that
    fit the context the server gives a request (the prompt is depth + prompt_tokens long)."""
    fits, _ = split_depths(depths, prompt_tokens, gen_tokens, context or context_of(base))
    out = []
    for depth in fits:
        result = run_api_bench(
            base, model, prompt_tokens=depth + prompt_tokens, gen_tokens=gen_tokens,
            repetitions=repetitions, warmup=False, cancel=cancel, metrics=metrics,
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
    ids = exact_prompt(base, prompt_tokens, model=model)
    prompt: str | list[int] = ids if ids is not None else FILLER[: prompt_tokens * 4]
    rows = []
    salt = _Salt()
    for n in streams:
        samples: list[Sample] = []
        errors: list[str] = []

        def one(samples: list[Sample] = samples, errors: list[str] = errors) -> None:
            try:
                samples.append(_one(base, model, prompt, gen_tokens, cancel, 600.0, salt))
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
