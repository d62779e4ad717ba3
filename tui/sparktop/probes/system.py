"""One call that reads the whole box into a Snapshot (memory, GPUs, hints)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

from sparktop.probes import ProbeRoots
from sparktop.probes.amd import AmdProbe
from sparktop.probes.memory import read_memory
from sparktop.probes.nvidia import NvidiaProbe
from sparktop.probes.procfs import hostname, in_container, uptime_seconds
from sparktop.snapshot import GpuInfo, Hint, MemoryInfo, Snapshot
from sparktop.units import fmt_bytes

DROP_CACHES = "sync; echo 3 | sudo tee /proc/sys/vm/drop_caches"
HOSTNAME_EVERY_S = 60.0


@dataclass(frozen=True)
class MemoryHints:
    """When to suggest dropping the page cache (sparktop never does it itself).

    Plain values: config.py builds them from the `memory:` section; the probe only reads them.
    """

    cache_min_percent: float = 10.0
    """Page cache must be at least this share of total memory."""
    low_available_percent: float = 25.0
    """... while available memory is below this share of total ..."""
    low_free_percent: float = 15.0
    """... or truly free (unreclaimed) memory is below this share of total."""


def memory_hints(memory: MemoryInfo, rules: MemoryHints) -> tuple[Hint, ...]:
    """Suggest dropping the page cache when it is large while little memory is really free.

    On unified memory, CUDA allocations have been seen to fail while MemAvailable still
    counts reclaimable cache, so large cache + low free/available is worth a warning.
    """
    total = memory.total_bytes or 1
    cache_share = 100.0 * memory.cached_bytes / total
    available_share = 100.0 * memory.available_bytes / total
    free_share = 100.0 * memory.free_bytes / total
    low = available_share < rules.low_available_percent or free_share < rules.low_free_percent
    if cache_share >= rules.cache_min_percent and low:
        return (
            Hint(
                kind="drop_caches",
                message=(
                    f"page cache holds {fmt_bytes(memory.cached_bytes)} but only "
                    f"{fmt_bytes(memory.free_bytes)} is free: a GPU engine starting now may "
                    "fail to allocate. Drop the cache first"
                ),
                command=DROP_CACHES,
            ),
        )
    return ()


class SystemProbe:
    """Owns the per-machine probes; `collect()` is safe to call from a worker thread."""

    def __init__(
        self,
        roots: ProbeRoots | None = None,
        nvml: ModuleType | None = None,
        hint_rules: MemoryHints | None = None,
    ) -> None:
        self.roots = roots or ProbeRoots.from_env()
        self.hint_rules = hint_rules or MemoryHints()
        roots = self.roots
        self.nvidia = NvidiaProbe(
            roots.proc, roots.dev, nvml=nvml, dev_shown=roots.shown(roots.dev),
            host_root=roots.host_root,
        )  # fmt: skip
        self.amd = AmdProbe(roots.sys, sys_shown=roots.shown(roots.sys))
        self._in_container: bool | None = None
        """Asked once: a process does not move in or out of a container."""
        self._hostname: tuple[float, str] | None = None

    def memory_only(self) -> Snapshot:
        """A snapshot with memory alone: never blocks (procfs), for the very first frame."""
        return self._snapshot()

    def collect(self) -> Snapshot:
        return self._snapshot(with_gpus=True)

    def _snapshot(self, with_gpus: bool = False) -> Snapshot:
        memory: MemoryInfo | None = None
        memory_error = None
        try:
            memory = read_memory(self.roots.proc)
        except (OSError, KeyError, ValueError) as exc:
            memory_error = f"cannot read {self.roots.shown(self.roots.proc)}/meminfo: {exc}"
        gpus: list[GpuInfo] = []
        reason = None
        if with_gpus:
            gpus = self.nvidia.read(memory)
            gpus += self.amd.read(first_index=len(gpus))
            if not gpus:
                reasons = [r for r in (self.nvidia.reason, self.amd.reason) if r]
                reason = "; ".join(reasons) or "no GPU found"
                if self._in_container is None:
                    self._in_container = in_container(self.roots.proc, self.roots.root)
                if self._in_container:
                    reason += " (running in a container: is the GPU passed through?)"
                reason += self._host_root_hint()
        hints = memory_hints(memory, self.hint_rules) if memory else ()
        return Snapshot(
            time=time.time(),
            hostname=self._host(),
            uptime_s=uptime_seconds(self.roots.proc),
            memory=memory,
            memory_error=memory_error,
            gpus=tuple(gpus),
            gpu_unavailable_reason=reason,
            hints=hints,
            host_root=str(self.roots.host_root) if self.roots.host_root else None,
        )

    def _host_root_hint(self) -> str:
        """A debug container with the node's root at /host (kubectl debug node/…): say so."""
        host = self.roots.root / "host"
        if self.roots.host_root is None and (host / "proc" / "1").is_dir():
            return (
                f"; the node's root is at {self.roots.shown(host)}: try sparktop --host-root /host"
            )
        return ""

    def _host(self) -> str:
        """The host name, read again every HOSTNAME_EVERY_S (it changes rarely, if ever)."""
        now = time.monotonic()
        if self._hostname is None or now - self._hostname[0] >= HOSTNAME_EVERY_S:
            self._hostname = (now, hostname(self.roots.proc))
        return self._hostname[1]

    def close(self) -> None:
        self.nvidia.close()
