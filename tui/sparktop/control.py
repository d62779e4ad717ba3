"""The pieces every front end needs, wired from the config: catalog, monitor, supervisor.

The TUI and the headless CLI both go through this, so `sparktop serve X` in a second shell
and `s` in the TUI do exactly the same thing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.fit import FitVerdict, check_fit
from sparktop.catalog.loader import Catalog, load_catalog
from sparktop.config import Config
from sparktop.fleet.rpc import ssh_runner
from sparktop.probes import ProbeRoots
from sparktop.probes.memory import read_memory
from sparktop.servers.info import ServerInfo
from sparktop.servers.monitor import ServerMonitor
from sparktop.servers.registry import Registry
from sparktop.servers.supervisor import ServeError, Supervisor


@dataclass
class Control:
    config: Config
    registry: Registry
    monitor: ServerMonitor
    supervisor: Supervisor
    roots: ProbeRoots = field(default_factory=ProbeRoots.from_env)
    _catalog: Catalog | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def catalog(self) -> Catalog:
        """The catalog, read on first use (the TUI does that off its first frame's path)."""
        with self._lock:
            if self._catalog is None:
                self._catalog = load_catalog()
                self.monitor.catalog = self._catalog
            return self._catalog

    def use_catalog(self, catalog: Catalog) -> None:
        """Use a catalog loaded again (the TUI noticed an edited catalog file)."""
        with self._lock:
            self._catalog = catalog
            self.monitor.catalog = catalog

    @classmethod
    def from_config(cls, config: Config, roots: ProbeRoots | None = None) -> Control:
        roots = roots or ProbeRoots.from_env()
        registry = Registry()
        monitor = ServerMonitor(registry=registry, roots=roots, timeout=config.servers.timeout)
        supervisor = Supervisor(
            registry=registry,
            roots=roots,
            engines=config.engine_binaries,
            stop_timeout_s=config.servers.stop_timeout,
            remote=ssh_runner(config.hosts),  # RPC workers started on other hosts over SSH
        )
        return cls(config, registry, monitor, supervisor, roots)

    def poll(self, gpu_by_pid: dict[int, int] | None = None) -> tuple[ServerInfo, ...]:
        """Discover and poll every server (blocking), with the catalog's names and proxies."""
        _ = self.catalog
        return self.monitor.poll(gpu_by_pid)

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.monitor.close()

    def resolve_entry(self, name: str) -> ModelEntry:
        entry = self.catalog.get(name)
        if entry is None:
            entry = self.catalog.by_served_name(name)
        if entry is None:
            names = ", ".join(sorted(self.catalog.entries)) or "none"
            raise ServeError(f"no catalog entry named {name!r} (known: {names})")
        return entry

    def fit(self, entry: ModelEntry, servers: tuple[ServerInfo, ...]) -> FitVerdict:
        """Fit of `entry` now, counting what its serve would stop."""
        plan = self.supervisor.plan(entry, servers, self.catalog.entries)
        return plan.fit

    def fit_many(self, entries: list[ModelEntry]) -> FitVerdict:
        memory = read_memory(self.roots.proc)
        return check_fit(
            entries, available_bytes=memory.available_bytes, pool_total_bytes=memory.total_bytes
        )
