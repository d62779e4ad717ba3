"""Engines behind one interface: one adapter per engine, and the registry that finds them.

Owns everything engine-specific (launch forms, serve argv, programs and companion tools,
health and metric names, fit overheads, /props and /slots, split serving in `llama_rpc`).
May import the catalog's plain dataclasses and, inside functions, other `sparktop.servers`
modules; never the fleet, the faces or Textual. Everyone else asks `adapter(name)` instead of
comparing engine names.
"""

from __future__ import annotations

from collections.abc import Sequence

from sparktop.engines.base import (
    CHILD,
    NO_METRICS,
    SERVER,
    Configured,
    EngineAdapter,
    EngineError,
    EngineMemo,
    Launch,
    MetricNames,
    ServeRequest,
)
from sparktop.engines.command import Command
from sparktop.engines.llama_cpp import LlamaCpp, find_llama_server
from sparktop.engines.names import COMMAND, LLAMA_CPP, SGLANG, VLLM
from sparktop.engines.sglang import Sglang
from sparktop.engines.vllm import Vllm

ADAPTERS: dict[str, EngineAdapter] = {a.name: a for a in (LlamaCpp(), Vllm(), Sglang(), Command())}
"""Every engine the catalog may name, in the order error messages list them."""

ENGINE_NAMES: tuple[str, ...] = tuple(ADAPTERS)
CONFIGURABLE_ENGINES: tuple[str, ...] = tuple(n for n, a in ADAPTERS.items() if a.configurable)
"""Engines whose program config.yaml `engines:` may name."""

__all__ = [
    "ADAPTERS",
    "CHILD",
    "COMMAND",
    "CONFIGURABLE_ENGINES",
    "ENGINE_NAMES",
    "LLAMA_CPP",
    "NO_METRICS",
    "SERVER",
    "SGLANG",
    "VLLM",
    "Configured",
    "EngineAdapter",
    "EngineError",
    "EngineMemo",
    "Launch",
    "MetricNames",
    "ServeRequest",
    "adapter",
    "classify",
    "find_llama_server",
    "metric_names",
]


def adapter(name: str) -> EngineAdapter:
    """The adapter of engine `name`; an unknown name (e.g. a record from another sparktop)
    gets the generic `command` one, which assumes nothing about the server."""
    return ADAPTERS.get(name) or ADAPTERS[COMMAND]


def classify(argv: Sequence[str]) -> Launch | None:
    """Which engine (if any) a command line belongs to."""
    if not argv:
        return None
    for engine in ADAPTERS.values():
        launch = engine.classify(argv)
        if launch is not None:
            return launch
    return None


def metric_names(engine: str) -> MetricNames:
    return adapter(engine).metrics
