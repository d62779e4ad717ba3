"""Engine `command`: a server the catalog starts from a full argv of its own.

sparktop knows nothing engine-specific about it: it polls /health and /v1/models like any
OpenAI-compatible server, reads no metrics, and never recognises one in the process table
(only its own record says what it is).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sparktop.engines.base import Configured, EngineAdapter, Launch, ServeRequest
from sparktop.engines.names import COMMAND

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry


class Command(EngineAdapter):
    name = COMMAND
    takes_argv = True
    configurable = False

    def classify(self, argv: Sequence[str]) -> Launch | None:
        """Never: any program could be one, so only sparktop's own record says so."""
        return None

    def binary(self, configured: Configured) -> list[str]:
        """None: the catalog's serve.argv is the whole command."""
        return []

    def locate(self) -> str | None:
        return None

    def model_argument(self, entry: ModelEntry, path: Path | None) -> str:
        """What {model} stands for: the local path, else the Hub repo, else nothing."""
        return str(path or entry.repo or "")

    def serve_argv(self, request: ServeRequest) -> list[str]:
        """The catalog's serve.argv with {model}, {port}, {host}, {served_name}, {context}
        replaced inside each element (nothing goes through a shell)."""
        r = request
        values = {
            "model": r.model,
            "port": str(r.port),
            "host": r.host,
            "served_name": r.served_name,
            "context": str(r.context or ""),
        }
        argv = []
        for item in r.template:
            for key, value in values.items():
                item = item.replace("{" + key + "}", value)
            argv.append(item)
        return argv
