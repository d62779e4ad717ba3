"""Free space of the filesystems that hold the catalog's model folders (os.statvfs).

One entry per filesystem, with the folders on it and what unfinished downloads still need
there. Cheap (a stat per folder, a statvfs per filesystem): read on the servers' cadence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from sparktop.snapshot import DiskInfo, DownloadInfo, ExternalDownloadInfo
from sparktop.units import fmt_bytes

UNFINISHED = ("queued", "downloading", "verifying", "waiting")
"""Download states whose remaining bytes are still to be written."""


def _existing(path: Path) -> Path | None:
    """`path`, or its nearest folder that exists (a model folder not downloaded yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


class DiskProbe:
    """Reads the filesystems under a set of folders; mount points are worked out once."""

    def __init__(self) -> None:
        self._mounts: dict[int, str] = {}
        """st_dev → mount point."""

    def _mount(self, path: Path, device: int) -> str:
        if device not in self._mounts:
            mount = path
            while mount.parent != mount:
                try:
                    if os.stat(mount.parent).st_dev != device:
                        break
                except OSError:
                    break
                mount = mount.parent
            self._mounts[device] = str(mount)
        return self._mounts[device]

    def read(
        self,
        dirs: Iterable[str | Path],
        downloads: Sequence[DownloadInfo | ExternalDownloadInfo] = (),
    ) -> tuple[DiskInfo, ...]:
        """One DiskInfo per filesystem holding `dirs` (and the unfinished downloads' folders),
        in the order first met; folders that cannot be read are left out."""
        wanted = [Path(d).expanduser() for d in dirs]
        pending: dict[str, int] = {}
        for download in downloads:
            if isinstance(download, DownloadInfo) and download.state in UNFINISHED:
                left = max(0, download.total_bytes - download.done_bytes)
                folder = str(Path(download.local_dir).expanduser())
                pending[folder] = pending.get(folder, 0) + left
                wanted.append(Path(folder))
        found: dict[int, tuple[str, list[str], int]] = {}
        for path in wanted:
            existing = _existing(path.absolute())
            if existing is None:
                continue
            try:
                device = os.stat(existing).st_dev
            except OSError:
                continue
            if device not in found:
                found[device] = (self._mount(existing, device), [], 0)
            mount, folders, needed = found[device]
            text = str(path)
            if text not in folders:
                folders.append(text)
                found[device] = (mount, folders, needed + pending.pop(text, 0))
        out = []
        for mount, folders, needed in found.values():
            try:
                vfs = os.statvfs(mount)
            except OSError:
                continue
            out.append(
                DiskInfo(
                    mount=mount,
                    total_bytes=vfs.f_blocks * vfs.f_frsize,
                    free_bytes=vfs.f_bavail * vfs.f_frsize,
                    dirs=tuple(folders),
                    needed_bytes=needed,
                )
            )
        return tuple(out)


def low_space(disks: Sequence[DiskInfo]) -> list[str]:
    """One line per filesystem with less free space than its unfinished downloads need."""
    return [
        f"disk {d.mount}: {fmt_bytes(d.free_bytes)} free, downloads there still need "
        f"{fmt_bytes(d.needed_bytes)}"
        for d in disks
        if d.low
    ]


def disk_line(disks: Sequence[DiskInfo], most: int = 2) -> str:
    """`disk / 40.1 GiB free · /data 812.0 GiB free` (the fullest first; `!` when low)."""
    shown = sorted(disks, key=lambda d: d.free_bytes)[:most]
    parts = [f"{d.mount} {fmt_bytes(d.free_bytes)} free{'!' if d.low else ''}" for d in shown]
    return ("disk " + " · ".join(parts)) if parts else ""
