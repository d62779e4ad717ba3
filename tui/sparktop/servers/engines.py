"""Engine adapters: how llama.cpp, vLLM and SGLang look in the process table and over HTTP.

Everything engine-specific sits here, behind one small interface, so discovery, polling and
serving stay engine-agnostic (the shape Harlequin uses for its database adapters).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricNames:
    """Prometheus names per quantity, newest first (engines renamed some over versions)."""

    running: tuple[str, ...]
    waiting: tuple[str, ...]
    prompt_tokens: tuple[str, ...]
    generated_tokens: tuple[str, ...]
    kv_usage: tuple[str, ...]
    kv_usage_scale: float = 1.0
    """Multiply the kv_usage value by this to get a 0..1 fraction."""


@dataclass(frozen=True)
class Launch:
    """What a command line says about a server."""

    engine: str
    role: str  # "server" or "child" (a worker process of a server, not a server itself)
    port: int | None = None
    host: str | None = None
    served_name: str | None = None
    model: str | None = None


def _opt(argv: Sequence[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class Engine:
    name = ""
    default_port = 0
    metrics: MetricNames
    health_path = "/health"
    metrics_path = "/metrics"

    def classify(self, argv: Sequence[str]) -> Launch | None:
        raise NotImplementedError

    def serve_argv(
        self,
        *,
        binary: Sequence[str],
        model: str,
        served_name: str,
        host: str,
        port: int,
        context: int | None,
        args: Sequence[str],
    ) -> list[str]:
        raise NotImplementedError


def _python_module(argv: Sequence[str]) -> str | None:
    """`python -m MODULE …` → MODULE."""
    if not argv or "python" not in os.path.basename(argv[0]):
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if not arg.startswith("-"):
            return None
    return None


def _script(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The program name and its arguments, looking through `python /path/script`."""
    if not argv:
        return "", []
    first = os.path.basename(argv[0])
    if "python" in first and len(argv) > 1 and not argv[1].startswith("-"):
        return os.path.basename(argv[1]), list(argv[2:])
    return first, list(argv[1:])


class LlamaCpp(Engine):
    name = "llama.cpp"
    default_port = 8080
    metrics = MetricNames(
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        prompt_tokens=("llamacpp:prompt_tokens_total",),
        generated_tokens=("llamacpp:tokens_predicted_total",),
        kv_usage=("llamacpp:kv_cache_usage_ratio",),
    )
    programs = ("llama-server", "llama-server.exe")

    def classify(self, argv: Sequence[str]) -> Launch | None:
        program, args = _script(argv)
        if program not in self.programs:
            return None
        return Launch(
            engine=self.name,
            role="server",
            port=_int(_opt(args, "--port")) or self.default_port,
            host=_opt(args, "--host") or "127.0.0.1",
            served_name=_opt(args, "--alias", "-a"),
            model=_opt(args, "-m", "--model", "-hf", "--hf-repo"),
        )

    def serve_argv(self, *, binary, model, served_name, host, port, context, args):
        argv = [*binary, "-m", model, "--alias", served_name, "--host", host, "--port", str(port)]
        if context and not {"-c", "--ctx-size"} & set(args):
            argv += ["-c", str(context)]
        if "--metrics" not in args:
            argv.append("--metrics")
        return argv + list(args)


class Vllm(Engine):
    name = "vllm"
    default_port = 8000
    metrics = MetricNames(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        prompt_tokens=("vllm:prompt_tokens_total",),
        generated_tokens=("vllm:generation_tokens_total",),
        kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    )
    children = ("VLLM::",)

    def classify(self, argv: Sequence[str]) -> Launch | None:
        if argv and any(argv[0].startswith(c) for c in self.children):
            return Launch(engine=self.name, role="child")
        module = _python_module(argv)
        program, args = _script(argv)
        if module == "vllm.entrypoints.openai.api_server":
            args = list(argv[argv.index(module) + 1 :])
            model = _opt(args, "--model")
        elif program == "vllm" and args[:1] == ["serve"]:
            args = args[1:]
            model = args[0] if args and not args[0].startswith("-") else _opt(args, "--model")
        else:
            return None
        return Launch(
            engine=self.name,
            role="server",
            port=_int(_opt(args, "--port")) or self.default_port,
            host=_opt(args, "--host") or "0.0.0.0",
            served_name=_opt(args, "--served-model-name") or model,
            model=model,
        )

    def serve_argv(self, *, binary, model, served_name, host, port, context, args):
        argv = [*binary, "serve", model, "--served-model-name", served_name]
        argv += ["--host", host, "--port", str(port)]
        if context and "--max-model-len" not in args:
            argv += ["--max-model-len", str(context)]
        return argv + list(args)


class Sglang(Engine):
    name = "sglang"
    default_port = 30000
    metrics = MetricNames(
        running=("sglang:num_running_reqs",),
        waiting=("sglang:num_queue_reqs",),
        prompt_tokens=("sglang:prompt_tokens_total",),
        generated_tokens=("sglang:generation_tokens_total",),
        kv_usage=("sglang:token_usage",),
    )

    def classify(self, argv: Sequence[str]) -> Launch | None:
        if argv and argv[0].startswith("sglang::"):
            return Launch(engine=self.name, role="child")
        module = _python_module(argv)
        program, args = _script(argv)
        if module == "sglang.launch_server":
            args = list(argv[argv.index(module) + 1 :])
        elif program == "sglang" and args[:1] == ["serve"]:
            args = args[1:]
        else:
            return None
        model = _opt(args, "--model-path", "--model")
        return Launch(
            engine=self.name,
            role="server",
            port=_int(_opt(args, "--port")) or self.default_port,
            host=_opt(args, "--host") or "127.0.0.1",
            served_name=_opt(args, "--served-model-name") or model,
            model=model,
        )

    def serve_argv(self, *, binary, model, served_name, host, port, context, args):
        argv = [*binary, "-m", "sglang.launch_server", "--model-path", model]
        argv += ["--served-model-name", served_name, "--host", host, "--port", str(port)]
        if context and "--context-length" not in args:
            argv += ["--context-length", str(context)]
        if "--enable-metrics" not in args:
            argv.append("--enable-metrics")
        return argv + list(args)


ENGINES: dict[str, Engine] = {e.name: e for e in (LlamaCpp(), Vllm(), Sglang())}

COMMAND_METRICS = MetricNames((), (), (), (), ())


def classify(argv: Sequence[str]) -> Launch | None:
    """Which engine (if any) a command line belongs to."""
    if not argv:
        return None
    for engine in ENGINES.values():
        launch = engine.classify(argv)
        if launch is not None:
            return launch
    return None


def metric_names(engine: str) -> MetricNames:
    found = ENGINES.get(engine)
    return found.metrics if found else COMMAND_METRICS
