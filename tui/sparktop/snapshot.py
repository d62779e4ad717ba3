"""The state of the box at one instant: frozen dataclasses shared by the TUI and the CLI.

`Snapshot.to_json()` is the documented `sparktop status --json` schema (see README).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sparktop.servers.info import ServerInfo


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
    downloads: tuple[dict[str, Any], ...] = ()
    """Download records (see sparktop.downloads.transfer.DownloadJob.to_json)."""

    @property
    def unified(self) -> bool:
        return any(gpu.unified for gpu in self.gpus)

    @property
    def gpu_held_bytes(self) -> int:
        """System memory held by GPU work: only unified GPUs hold system memory."""
        return sum(gpu.memory_used_bytes or 0 for gpu in self.gpus if gpu.unified)

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
            "downloads": list(self.downloads),
        }
        if self.memory_error:
            doc["memory_error"] = self.memory_error
        if not self.gpus:
            doc["gpu_unavailable_reason"] = self.gpu_unavailable_reason or "no GPU found"
        return doc
