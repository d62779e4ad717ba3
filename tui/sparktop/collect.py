"""The one producer of the box's Snapshot (memory, GPUs, servers, downloads, hints).

`sparktop status`, `sparktop agent`, the TUI and the fleet's local row all read what this
builds: the CLI and the agent call `collect()` once per answer; the TUI calls `probe()` and
`poll_servers()` from its two workers at their own cadences and `current()` whenever it
needs the whole picture.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sparktop.config import Config
from sparktop.snapshot import DiskInfo, DownloadInfo, ExternalDownloadInfo, Snapshot

if TYPE_CHECKING:
    from sparktop.control import Control
    from sparktop.probes.disk import DiskProbe
    from sparktop.probes.system import SystemProbe
    from sparktop.servers.exit_watch import ExitWatch
    from sparktop.servers.info import ServerInfo

STATUS_CPU_WINDOW_S = 0.25
"""`sparktop status` measures servers' CPU % over this long (only when a server runs)."""

EXIT_GRACE_S = 0.2
"""After a server exits, the poll waits this long so its exit cause is on disk (the waiter
that reaps it writes it within milliseconds, more on a loaded box)."""

DownloadRows = Callable[[], Sequence["DownloadInfo | ExternalDownloadInfo"]]


class SnapshotProducer:
    """Builds Snapshots from the probes, the server monitor and the download records."""

    def __init__(
        self,
        config: Config,
        *,
        probe: SystemProbe | None = None,
        control: Control | None = None,
        downloads: DownloadRows | None = None,
    ) -> None:
        from sparktop.probes.system import SystemProbe

        self.config = config
        self.probe_source = probe or SystemProbe(hint_rules=config.memory_hints)
        self._control = control
        self.download_rows = downloads
        """Where download rows come from (the TUI's manager); None: the kept records."""
        self._lock = threading.Lock()
        self._system: Snapshot | None = None
        self._servers: tuple[ServerInfo, ...] = ()
        self._exits: ExitWatch | None = None
        self._disk_probe: DiskProbe | None = None

    @property
    def control(self) -> Control:
        """Catalog, monitor and supervisor, built on first use (off the first frame's path)."""
        with self._lock:
            if self._control is None:
                from sparktop.control import Control

                self._control = Control.from_config(self.config)
            return self._control

    def memory_only(self) -> Snapshot:
        """/proc/meminfo alone: answers at once, so a first frame can show it."""
        return self.probe_source.memory_only()

    def probe(self) -> Snapshot:
        """Memory, GPUs and hints now (blocking: NVML and sysfs may be slow)."""
        snapshot = self.probe_source.collect()
        self._system = snapshot
        return snapshot

    def poll_servers(self) -> tuple[ServerInfo, ...]:
        """Discover and poll every server, with the GPU memory the last probe saw per PID."""
        gpu_by_pid: dict[int, int] = {}
        if self._system is not None:
            gpu_by_pid = {p.pid: p.used_bytes or 0 for g in self._system.gpus for p in g.processes}
        self._servers = self.control.poll(gpu_by_pid)
        return self._servers

    def _exit_watch(self) -> ExitWatch:
        with self._lock:
            if self._exits is None:
                from sparktop.servers.exit_watch import ExitWatch

                self._exits = ExitWatch()
            return self._exits

    def wait_for_servers(self, timeout: float) -> None:
        """Sleep until the next servers poll is due: `timeout` passed, `wake_servers()` was
        called, or one of the servers last polled exited (a stop from outside shows at once,
        not one idle interval later)."""
        watch = self._exit_watch()
        watch.watch(s.pid for s in self._servers if s.pid)
        if watch.wait(timeout):
            time.sleep(EXIT_GRACE_S)  # its waiter, woken by the same exit, writes how it ended

    def wake_servers(self) -> None:
        """Poll the servers now (a key, an action ended, the app is leaving)."""
        self._exit_watch().wake()

    def downloads(self) -> tuple[DownloadInfo | ExternalDownloadInfo, ...]:
        """sparktop's download records, then downloads started elsewhere (file system reads)."""
        if self.download_rows is not None:
            return tuple(self.download_rows())
        from sparktop.downloads.records import DownloadStore
        from sparktop.downloads.watch import ExternalWatcher

        catalog = self.control.catalog
        dirs = [(e.local_dir, e.repo) for e in catalog if e.local_dir is not None]
        external = ExternalWatcher(local_dirs=lambda: dirs).scan()
        return (*DownloadStore().infos(), *(e.info() for e in external))

    def read_disks(
        self, downloads: Sequence[DownloadInfo | ExternalDownloadInfo] = ()
    ) -> tuple[DiskInfo, ...]:
        """Free space of the filesystems holding the catalog's model folders, and what the
        unfinished `downloads` still need on each (a stat per folder: the servers' cadence)."""
        with self._lock:
            if self._disk_probe is None:
                from sparktop.probes.disk import DiskProbe

                self._disk_probe = DiskProbe()
        dirs = [e.local_dir for e in self.control.catalog if e.local_dir is not None]
        return self._disk_probe.read(dirs, downloads)

    def current(self) -> Snapshot | None:
        """The latest probe with the latest servers, downloads and disks (None before the
        first)."""
        if self._system is None:
            return None
        downloads = self.downloads()
        return dataclasses.replace(
            self._system,
            servers=self._servers,
            downloads=downloads,
            disks=self.read_disks(downloads),
        )

    def collect(self, cpu_window_s: float = 0.0) -> Snapshot:
        """Everything, now (blocking, bounded): what `status` prints and the agent serves.

        `cpu_window_s`: a first call's servers' CPU % is measured over at least this long
        (their CPU time is read before the probe and again at the poll); later calls measure
        it since the call before."""
        started = time.monotonic()
        sampled = cpu_window_s > 0 and self.control.monitor.sample_cpu()
        self.probe()
        if sampled:
            time.sleep(max(0.0, cpu_window_s - (time.monotonic() - started)))
        self.poll_servers()
        snapshot = self.current()
        assert snapshot is not None
        return snapshot

    def close(self) -> None:
        self.probe_source.close()
        if self._exits is not None:
            self._exits.close()
        if self._control is not None:
            self._control.close()


def collect_status(
    config: Config, finish: Callable[[Control, Snapshot], Snapshot] | None = None
) -> Snapshot:
    """One full snapshot of this box, as `sparktop status` prints it (blocking, bounded);
    `finish`: a last step given the same Control (the catalog is read once)."""
    producer = SnapshotProducer(config)
    try:
        snapshot = producer.collect(cpu_window_s=STATUS_CPU_WINDOW_S)
        return finish(producer.control, snapshot) if finish else snapshot
    finally:
        producer.close()
