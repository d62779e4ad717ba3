"""The state of the box at one instant: frozen dataclasses shared by the TUI and the CLI.

`Snapshot.to_json()` is the documented `sparktop status --json` schema (see README).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from sparktop.urls import base_url

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
class ContainerInfo:
    """What a server runs in, from its /proc/PID/cgroup (and the runtime's files)."""

    runtime: str
    """docker, podman, containerd, cri-o or kubernetes (a kubepods cgroup, runtime unknown)."""
    id: str
    name: str | None = None
    """The container's name (Docker/Podman name, or the Kubernetes container), when readable."""
    pod: str | None = None
    """Kubernetes pod as namespace/name, when readable (else pod UID)."""


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
    cpu_percent: float | None = None
    """CPU use of the server and its workers between the last two polls, in percent of one
    core (top's way: 250 is two and a half cores busy); None until two polls have seen it."""
    running: int | None = None
    """Requests being processed, and waiting (counts, from /metrics)."""
    waiting: int | None = None
    prompt_tps: float | None = None
    gen_tps: float | None = None
    prompt_tokens_total: float | None = None
    """Prompt tokens processed and tokens generated since the server started (its /metrics
    counters; the rates above come from them)."""
    gen_tokens_total: float | None = None
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
    exit_cause: str | None = None
    """A crashed server: how it ended ("exited with 1", "killed by signal 9 (SIGKILL)",
    "out of memory (OOM killer)", "exited (cause unknown)"); None while it runs."""
    idle_stop_in_s: float | None = None
    """Seconds until sparktop stops it for having no request (its catalog entry's
    `idle_stop_after`); None when no idle stop applies."""
    container: ContainerInfo | None = None
    """The container it runs in; None: a plain host process."""
    reachable_via: str | None = None
    """A server in another network namespace: how it is reached (":8000 in container →
    :30000 on host"), or why it cannot be; None: it listens in sparktop's own namespace."""
    argv: tuple[str, ...] = ()
    """Its command line, values of options that name a key, token or password as ***."""

    @property
    def url(self) -> str | None:
        return base_url(self.host, self.port) if self.port else None

    @property
    def key(self) -> str:
        return f"{self.pid}:{self.port}"

    @property
    def who(self) -> str:
        """'name (pid N, port P)' for messages, leaving out what is unknown (a crashed
        record has no PID)."""
        known = [f"{k} {v}" for k, v in (("pid", self.pid), ("port", self.port)) if v]
        return f"{self.name} ({', '.join(known)})" if known else self.name

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["url"] = self.url
        doc["log_tail"] = list(self.log_tail)
        doc["models"] = list(self.models)
        doc["children"] = list(self.children)
        doc["argv"] = list(self.argv)
        doc["rpc_workers"] = [asdict(w) for w in self.rpc_workers]
        for count in ("running", "waiting"):  # counts are integers, as the schema shows
            if doc[count] is not None:
                doc[count] = round(doc[count])
        return doc


@dataclass(frozen=True)
class MemoryInfo:
    """System memory from /proc/meminfo, in bytes.

    used = total - free - buffers - cached - reclaimable slab (what `free` calls used);
    cached = buffers + page cache + reclaimable slab (what `free` calls buff/cache).
    """

    total_bytes: int
    available_bytes: int
    free_bytes: int
    used_bytes: int
    cached_bytes: int
    swap_total_bytes: int
    swap_used_bytes: int

    @property
    def used_percent(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str | None
    used_bytes: int | None


@dataclass(frozen=True)
class GpuInfo:
    """One GPU. `None` in a field means the driver did not tell (not supported, no permission).

    unified: the GPU's memory is the system's memory (GB10, APUs); then memory_* describe
    the shared pool as the GPU sees it and `memory_source` says where the numbers came from.
    """

    index: int
    vendor: str
    name: str
    utilization_percent: float | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_source: str = "device"
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    unified: bool = False
    processes: tuple[GpuProcess, ...] = ()
    error: str | None = None

    @property
    def process_bytes(self) -> int:
        return sum(p.used_bytes or 0 for p in self.processes)


@dataclass(frozen=True)
class Hint:
    """Advice shown to the operator; sparktop never acts on it by itself."""

    kind: str
    message: str
    command: str | None = None


@dataclass(frozen=True)
class DownloadFileInfo:
    """One file of a sparktop download."""

    path: str
    size: int = 0
    sha256: str | None = None
    done_bytes: int = 0
    resumed_from: int = 0
    state: str = "queued"
    error: str | None = None
    speed_bps: float = 0.0
    note: str | None = None
    """What the file is waiting for, or what happened to it (e.g. a stale partial dropped)."""
    via: str | None = None
    """How its bytes came: "http" or "xet"."""

    @property
    def percent(self) -> float | None:
        return 100.0 * self.done_bytes / self.size if self.size else None

    @property
    def eta_s(self) -> float | None:
        left = self.size - self.done_bytes
        return left / self.speed_bps if self.speed_bps > 0 else None


@dataclass(frozen=True)
class DownloadInfo:
    """A download sparktop runs or ran (one record of downloads.json, live or kept)."""

    id: str
    repo: str
    revision: str = "main"
    commit: str | None = None
    local_dir: str = ""
    include: tuple[str, ...] = ()
    state: str = "queued"
    error: str | None = None
    total_bytes: int = 0
    done_bytes: int = 0
    percent: float = 0.0
    speed_bps: float = 0.0
    eta_s: float | None = None
    created_at: float | None = None
    finished_at: float | None = None
    files: tuple[DownloadFileInfo, ...] = ()

    external = False

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DownloadInfo:
        """A record as kept (older records lack fields: their defaults stand in)."""
        known = {k: v for k, v in doc.items() if k in _DOWNLOAD_FIELDS}
        known["include"] = tuple(known.get("include") or ())
        files = [f for f in doc.get("files") or [] if isinstance(f, dict)]
        known["files"] = tuple(
            DownloadFileInfo(**{k: v for k, v in f.items() if k in _FILE_FIELDS}) for f in files
        )
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["include"] = list(self.include)
        doc["files"] = [asdict(f) for f in self.files]
        return doc


@dataclass(frozen=True)
class ExternalDownloadInfo:
    """A download another program runs (`hf download`, another shell), seen growing on disk."""

    path: str
    mode: str
    repo: str | None = None
    file: str | None = None
    done_bytes: int = 0
    total_bytes: int | None = None
    percent: float | None = None
    speed_bps: float = 0.0
    eta_s: float | None = None
    active: bool = False
    state: str = "stalled (external)"

    external = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DiskInfo:
    """A filesystem that holds model folders of the catalog (from statvfs)."""

    mount: str
    total_bytes: int
    free_bytes: int
    """Free to sparktop's user (statvfs f_bavail: without the root-reserved blocks)."""
    dirs: tuple[str, ...] = ()
    """The catalog's (and unfinished downloads') folders on it."""
    needed_bytes: int = 0
    """What unfinished downloads into those folders still have to write."""

    @property
    def low(self) -> bool:
        """Less free space than the downloads queued or running there still need."""
        return self.needed_bytes > self.free_bytes

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dirs"] = list(self.dirs)
        doc["low"] = self.low
        return doc


_DOWNLOAD_FIELDS = {f.name for f in fields(DownloadInfo)}
_FILE_FIELDS = {f.name for f in fields(DownloadFileInfo)}


@dataclass(frozen=True)
class Snapshot:
    time: float
    hostname: str
    uptime_s: float | None
    memory: MemoryInfo | None
    memory_error: str | None = None
    gpus: tuple[GpuInfo, ...] = ()
    gpu_unavailable_reason: str | None = None
    hints: tuple[Hint, ...] = field(default_factory=tuple)
    servers: tuple[ServerInfo, ...] = ()
    downloads: tuple[DownloadInfo | ExternalDownloadInfo, ...] = ()
    """sparktop's downloads (newest last), then those started elsewhere."""
    host_root: str | None = None
    """Where the node's root is read through (`--host-root /host` in a debug container)."""
    disks: tuple[DiskInfo, ...] = ()
    """The filesystems that hold the catalog's model folders, with their free space."""

    @property
    def unified(self) -> bool:
        return any(gpu.unified for gpu in self.gpus)

    @property
    def gpu_held_bytes(self) -> int:
        """System memory held by GPU work: only unified GPUs hold system memory."""
        return sum(gpu.memory_used_bytes or 0 for gpu in self.gpus if gpu.unified)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Snapshot:
        """A `status --json` document (another host's, any version) read back: unknown keys
        are left out, missing ones read as unknown (None)."""
        memory = doc.get("memory")
        downloads = tuple(
            DownloadInfo.from_json(d) if "id" in d else _build(ExternalDownloadInfo, d)
            for d in _dicts(doc.get("downloads"))
        )
        return cls(
            time=doc.get("time") or 0.0,
            hostname=str(doc.get("hostname") or "?"),
            uptime_s=doc.get("uptime_s"),
            memory=_build(MemoryInfo, memory) if isinstance(memory, dict) else None,
            memory_error=doc.get("memory_error"),
            gpus=tuple(_gpu(g) for g in _dicts(doc.get("gpus"))),
            gpu_unavailable_reason=doc.get("gpu_unavailable_reason"),
            hints=tuple(_build(Hint, h) for h in _dicts(doc.get("hints"))),
            servers=tuple(_server(item) for item in _dicts(doc.get("servers"))),
            downloads=downloads,
            host_root=doc.get("host_root"),
            disks=tuple(_disk(d) for d in _dicts(doc.get("disks"))),
        )

    def to_json(self) -> dict[str, Any]:
        """The `status --json` document: stable keys, null where unknown."""
        memory: dict[str, Any] | None = None
        if self.memory is not None:
            memory = asdict(self.memory)
            memory["unified"] = self.unified
            memory["gpu_bytes"] = self.gpu_held_bytes if self.unified else None
        gpus = []
        for gpu in self.gpus:
            item = asdict(gpu)
            item["processes"] = [asdict(p) for p in gpu.processes]
            gpus.append(item)
        doc: dict[str, Any] = {
            "schema": 1,
            "time": self.time,
            "hostname": self.hostname,
            "uptime_s": self.uptime_s,
            "memory": memory,
            "gpus": gpus,
            "hints": [asdict(h) for h in self.hints],
            "servers": [s.to_json() for s in self.servers],
            "downloads": [d.to_json() for d in self.downloads],
            "disks": [d.to_json() for d in self.disks],
        }
        if self.memory_error:
            doc["memory_error"] = self.memory_error
        if self.host_root:
            doc["host_root"] = self.host_root
        if not self.gpus:
            doc["gpu_unavailable_reason"] = self.gpu_unavailable_reason or "no GPU found"
        return doc


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _gpu(doc: dict[str, Any]) -> GpuInfo:
    processes = tuple(_build(GpuProcess, p) for p in _dicts(doc.get("processes")))
    return _build(GpuInfo, doc, processes=processes)


def _server(doc: dict[str, Any]) -> ServerInfo:
    proxy = doc.get("proxy")
    return _build(
        ServerInfo,
        doc,
        models=tuple(doc.get("models") or ()),
        proxy=_build(ProxyStatus, proxy) if isinstance(proxy, dict) else None,
        container=_container(doc.get("container")),
        rpc_workers=tuple(_build(RpcWorkerStatus, w) for w in _dicts(doc.get("rpc_workers"))),
        log_tail=tuple(doc.get("log_tail") or ()),
        children=tuple(doc.get("children") or ()),
        argv=tuple(doc.get("argv") or ()),
    )


def _disk(doc: dict[str, Any]) -> DiskInfo:
    return _build(DiskInfo, doc, dirs=tuple(doc.get("dirs") or ()))


def _container(value: Any) -> ContainerInfo | None:
    return _build(ContainerInfo, value) if isinstance(value, dict) else None


def _build(cls: Any, doc: dict[str, Any], **overrides: Any) -> Any:
    """`cls` from the keys of `doc` it knows; a field without a default that `doc` lacks reads
    as None (unknown), so an older or newer sparktop's document still reads."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.name in doc:
            values[f.name] = doc[f.name]
        elif f.default is MISSING and f.default_factory is MISSING:
            values[f.name] = None
    return cls(**values)
