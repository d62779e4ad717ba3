"""SGLang: `python -m sglang.launch_server` (or `sglang serve`), run by a Python interpreter.

It preallocates a fraction of the whole pool at start (--mem-fraction-static), so that
fraction is what it needs, whatever the model.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from sparktop.engines.base import (
    EngineAdapter,
    Launch,
    MetricNames,
    ServeRequest,
    has_option,
    option,
)
from sparktop.engines.names import SGLANG


class Sglang(EngineAdapter):
    name = SGLANG
    default_port = 30000
    programs = ("sglang",)
    module = "sglang.launch_server"
    missing = (
        f"python3 not found on PATH (or set engines: {{{SGLANG}: /path/to/python}} in config.yaml)"
    )
    metrics = MetricNames(
        running=("sglang:num_running_reqs",),
        waiting=("sglang:num_queue_reqs",),
        prompt_tokens=("sglang:prompt_tokens_total",),
        generated_tokens=("sglang:generation_tokens_total",),
        kv_usage=("sglang:token_usage",),
    )
    children = ("sglang::",)  # scheduler, detokenizer …
    context_flags = ("--context-length",)
    pool_fraction = ("--mem-fraction-static", 0.88)

    def classify(self, argv: Sequence[str]) -> Launch | None:
        args = self.serving_args(argv)
        if args is None:
            return self.worker(argv)
        model = option(args, "--model-path", "--model")
        served_name = option(args, "--served-model-name") or model
        return self.server(args, model=model, served_name=served_name)

    def serve_argv(self, request: ServeRequest) -> list[str]:
        r = request
        argv = [*r.binary, "-m", str(self.module), "--model-path", r.model]
        argv += ["--served-model-name", r.served_name, "--host", r.host, "--port", str(r.port)]
        if r.context and not has_option(r.args, *self.context_flags):
            argv += ["--context-length", str(r.context)]
        if "--enable-metrics" not in r.args:
            argv.append("--enable-metrics")
        return argv + list(r.args)

    def locate(self) -> str | None:
        """The Python that runs `-m sglang.launch_server` (python3 on PATH)."""
        return shutil.which("python3") or "python3"
