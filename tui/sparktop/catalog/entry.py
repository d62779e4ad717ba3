"""What a catalog entry is: a model on disk (or on the Hub) plus how to serve it.

Plain frozen dataclasses; parsing and validation live in `catalog.loader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GB = 1_000_000_000


@dataclass(frozen=True)
class ProxySpec:
    """A token-auth proxy in front of the server (sparktop checks it; it does not run it)."""

    port: int
    host: str = "127.0.0.1"
    requires_token: bool = True
    token_env: str | None = None
    """Name of the environment variable that holds the token; the token itself is never shown."""


@dataclass(frozen=True)
class KnownSpeed:
    """A speed measured elsewhere, kept with the hardware it was measured on."""

    hardware: str
    prompt_tps: float | None = None
    gen_tps: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class Architecture:
    """Enough of the model's shape to estimate its KV cache when no GGUF is on disk."""

    layers: int
    kv_heads: int
    head_dim: int
    attention_layers: int | None = None
    """Layers that keep a KV cache (hybrid models: fewer than `layers`)."""


RUNTIMES = ("docker", "podman")


@dataclass(frozen=True)
class ContainerSpec:
    """Serve through Docker or Podman: the engine runs in `image`, in a container named after
    the entry (sparktop-NAME), with the port published on serve.host."""

    image: str
    runtime: str = "docker"
    gpus: str | None = None
    """`all`, a count or device ids (docker --gpus; podman: CDI nvidia.com/gpu=…)."""
    volumes: tuple[str, ...] = ()
    """`-v` values (HOST:CONTAINER[:ro]); the model's folder is mounted read-only anyway."""
    ipc: str | None = None
    args: tuple[str, ...] = ()
    """Further `run` options, one list item per argv element."""


@dataclass(frozen=True)
class ServeProfile:
    served_name: str
    port: int
    host: str = "127.0.0.1"
    context: int | None = None
    args: tuple[str, ...] = ()
    """Extra engine arguments, one list item per argv element."""
    argv: tuple[str, ...] = ()
    """Full argv for engine `command` ({model}, {port}, {host}, {served_name}, {context}
    are replaced inside each element; nothing goes through a shell)."""
    env: tuple[tuple[str, str], ...] = ()
    exclusive: str | None = None
    proxy: ProxySpec | None = None
    cache_type: str = "f16"
    parallel: int = 1
    ready_timeout_s: float = 900.0
    container: ContainerSpec | None = None
    """Run the engine in a container (serve.container); None: on this machine."""


@dataclass(frozen=True)
class RpcWorker:
    """One llama.cpp RPC worker (`ggml-rpc-server`) that llama-server reaches with `--rpc`."""

    endpoint: str
    """`address:port` as llama-server connects to it."""
    host: str | None = None
    """Name of a configured host (SSH start, memory); None: this machine."""
    start: bool = False
    """Start `ggml-rpc-server` there when nothing listens on the endpoint."""
    memory_gb: float | None = None
    """Memory this worker's host contributes to the pool (else probed where possible)."""
    args: tuple[str, ...] = ()
    """Extra `ggml-rpc-server` arguments, one item per argv element."""
    binary: str | None = None
    """Path of ggml-rpc-server there (default: next to llama-server here, on PATH there)."""

    @property
    def address(self) -> str:
        return self.endpoint.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])


@dataclass(frozen=True)
class RpcSpec:
    """Split serving: llama-server on this machine plus RPC workers (llama.cpp only)."""

    workers: tuple[RpcWorker, ...]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(w.endpoint for w in self.workers)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    engine: str
    serve: ServeProfile
    description: str = ""
    repo: str | None = None
    include: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    """Files relative to `local_dir`; the first is what the engine is given (the first shard)."""
    local_dir: Path | None = None
    quant: str | None = None
    bits_per_weight: float | None = None
    size_bytes: int | None = None
    params_b: float | None = None
    architecture: Architecture | None = None
    speeds: tuple[KnownSpeed, ...] = ()
    modes: tuple[str, ...] = ()
    source: str = ""
    """file:line the entry was read from."""
    tags: tuple[str, ...] = field(default=())
    rpc: RpcSpec | None = None
    """RPC workers the model is split over (llama.cpp `--rpc`); None: this machine alone."""
    keep: bool = False
    """Never stopped to make room for another model (`serve --evict`, the TUI's serve)."""
    idle_stop_after_s: float | None = None
    """A server sparktop started for it stops after this many seconds without a request
    (`idle_stop_after: 2h`; the TUI and `sparktop agent` do it); None: never."""

    @property
    def model_path(self) -> Path | None:
        """The path handed to the engine: the first file, or the local dir itself."""
        if self.local_dir is None:
            return None
        if self.files:
            return self.local_dir / self.files[0]
        return self.local_dir

    def file_paths(self) -> list[Path]:
        if self.local_dir is None:
            return []
        return [self.local_dir / name for name in self.files]
