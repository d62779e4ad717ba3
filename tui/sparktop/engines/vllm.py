"""vLLM: `vllm serve MODEL` (or the older `python -m vllm.entrypoints.openai.api_server`).

It preallocates a fraction of the whole pool at start (--gpu-memory-utilization), so that
fraction is what it needs, whatever the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from sparktop.engines.base import (
    EngineAdapter,
    Launch,
    MetricNames,
    ServeRequest,
    has_option,
    option,
)
from sparktop.engines.names import VLLM


class Vllm(EngineAdapter):
    name = VLLM
    default_port = 8000
    default_host = "0.0.0.0"
    programs = ("vllm",)
    module = "vllm.entrypoints.openai.api_server"  # the older entry point
    metrics = MetricNames(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        prompt_tokens=("vllm:prompt_tokens_total",),
        generated_tokens=("vllm:generation_tokens_total",),
        kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
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
        argv = [*r.binary, "serve", r.model, "--served-model-name", r.served_name]
        argv += ["--host", r.host, "--port", str(r.port)]
        if r.context and not has_option(r.args, *self.context_flags):
            argv += ["--max-model-len", str(r.context)]
        return argv + list(r.args)
