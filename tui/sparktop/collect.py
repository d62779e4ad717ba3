"""One full snapshot of this box (memory, GPUs, servers, downloads), as `sparktop status`
prints it and `sparktop agent` serves it."""

from __future__ import annotations

import dataclasses

from sparktop.config import Config
from sparktop.snapshot import Snapshot


def collect_status(config: Config) -> Snapshot:
    """Probe memory and GPUs, discover and poll servers, list downloads (blocking, bounded)."""
    from sparktop.control import Control
    from sparktop.downloads.records import DownloadStore
    from sparktop.downloads.watch import ExternalWatcher
    from sparktop.probes.system import SystemProbe

    probe = SystemProbe(hint_rules=config.memory_hints)
    control = Control.from_config(config)
    try:
        snapshot = probe.collect()
        gpu_by_pid = {p.pid: p.used_bytes or 0 for g in snapshot.gpus for p in g.processes}
        servers = control.poll(gpu_by_pid)
        dirs = [(e.local_dir, e.repo) for e in control.catalog if e.local_dir is not None]
        external = ExternalWatcher(local_dirs=lambda: dirs).scan()
        downloads = tuple(DownloadStore().load()) + tuple(e.to_json() for e in external)
        return dataclasses.replace(snapshot, servers=servers, downloads=downloads)
    finally:
        probe.close()
        control.close()
