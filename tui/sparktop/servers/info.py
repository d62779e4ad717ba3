"""One inference server as the views show it (part of the Snapshot)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# health states, in the words the screen uses
STARTING = "starting"  # process up, port not answering yet
LOADING = "loading"  # /health answers 503 (weights loading)
READY = "ready"
NOT_RESPONDING = "not responding"  # connect or read timed out
ERROR = "error"  # answered, but not OK
CRASHED = "crashed"  # a managed server's process is gone and nobody stopped it


@dataclass(frozen=True)
class ProxyStatus:
    port: int
    host: str
    reachable: bool
    refuses_without_token: bool | None
    """True: a request without a token got 401/403. False: it was answered. None: unknown."""
    token_accepted: bool | None = None
    open_on_network: bool = False
    """The proxy answers without a token on a non-loopback address: anyone can use it."""
    detail: str = ""


@dataclass(frozen=True)
class RpcWorkerStatus:
    """One llama.cpp RPC worker (`ggml-rpc-server`) of a split-served llama-server."""

    endpoint: str
    host: str | None = None
    """Configured host name; None: this machine."""
    pid: int | None = None
    """When sparktop started it on this machine."""
    started_by_sparktop: bool = False
    listening: bool | None = None
    """Local workers: from the socket table; remote ones: None (not probed)."""
    rss_bytes: int | None = None
    memory_bytes: int | None = None
    """What its host brings to the pool (catalog memory_gb), when known."""


@dataclass(frozen=True)
class ServerInfo:
    name: str
    """The served model name (what clients put in "model")."""
    engine: str
    pid: int | None
    port: int | None
    host: str = "127.0.0.1"
    pgid: int | None = None
    health: str = STARTING
    health_detail: str = ""
    models: tuple[str, ...] = ()
    uptime_s: float | None = None
    rss_bytes: int | None = None
    gpu_bytes: int | None = None
    running: float | None = None
    waiting: float | None = None
    prompt_tps: float | None = None
    gen_tps: float | None = None
    kv_usage: float | None = None
    """0..1 share of the KV cache in use."""
    context: int | None = None
    managed: bool = False
    catalog_name: str | None = None
    log_path: str | None = None
    proxy: ProxyStatus | None = None
    log_tail: tuple[str, ...] = ()
    children: tuple[int, ...] = ()
    latency_s: float | None = None
    rpc_workers: tuple[RpcWorkerStatus, ...] = ()

    @property
    def url(self) -> str | None:
        from sparktop.servers.http import base_url

        return base_url(self.host, self.port) if self.port else None

    @property
    def key(self) -> str:
        return f"{self.pid}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["url"] = self.url
        doc["log_tail"] = list(self.log_tail)
        doc["models"] = list(self.models)
        doc["children"] = list(self.children)
        doc["rpc_workers"] = [asdict(w) for w in self.rpc_workers]
        return doc
