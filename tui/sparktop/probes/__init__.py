"""Probes read the machine (procfs, sysfs, NVML, amdgpu) and return plain dataclasses: memory,
GPUs and their processes, and `system.SystemProbe`, which reads it all into a Snapshot.

Every probe takes its roots as arguments so tests can point it at fixture trees that look
like a DGX Spark or a Strix Halo; `ProbeRoots.from_env()` honours SPARKTOP_PROC_ROOT,
SPARKTOP_SYS_ROOT, SPARKTOP_DEV_ROOT and SPARKTOP_ROOT for the same purpose from the command line.

May import: the base modules (snapshot, units) only. Settings arrive as plain values
(`ProbeRoots`, `system.MemoryHints`), which config builds; never config, the domain or above.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProbeRoots:
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    dev: Path = Path("/dev")
    root: Path = Path("/")
    host_root: Path | None = None
    """The node's root seen from a debug container (SPARKTOP_HOST_ROOT, --host-root)."""

    @classmethod
    def under(cls, root: Path) -> ProbeRoots:
        """A whole fixture tree laid out like a machine: root/proc, root/sys, root/dev."""
        return cls(proc=root / "proc", sys=root / "sys", dev=root / "dev", root=root)

    def shown(self, path: Path) -> str:
        """`path` as the machine itself names it: a fixture's root/dev is shown as /dev."""
        if self.root == Path("/"):
            return str(path)
        try:
            return "/" + str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @classmethod
    def from_env(cls) -> ProbeRoots:
        """The roots the environment names; SPARKTOP_HOST_ROOT=/host reads the node's
        /host/proc, /host/sys and /host/dev (a root of its own still wins)."""
        host = os.environ.get("SPARKTOP_HOST_ROOT") or None
        base = Path(host) if host else Path("/")
        return cls(
            proc=Path(os.environ.get("SPARKTOP_PROC_ROOT", base / "proc")),
            sys=Path(os.environ.get("SPARKTOP_SYS_ROOT", base / "sys")),
            dev=Path(os.environ.get("SPARKTOP_DEV_ROOT", base / "dev")),
            root=Path(os.environ.get("SPARKTOP_ROOT", base)),
            host_root=Path(host) if host else None,
        )
