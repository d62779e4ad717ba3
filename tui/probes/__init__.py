"""Probes read the machine (procfs, sysfs, NVML) and return plain dataclasses.

Every probe takes its roots as arguments so tests can point it at fixture trees that look
like a DGX Spark or a Strix Halo; `ProbeRoots.from_env()` honours SPARKTOP_PROC_ROOT,
SPARKTOP_SYS_ROOT and SPARKTOP_DEV_ROOT for the same purpose from the command line.
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

    @classmethod
    def from_env(cls) -> ProbeRoots:
        return cls(
            proc=Path(os.environ.get("SPARKTOP_PROC_ROOT", "/proc")),
            sys=Path(os.environ.get("SPARKTOP_SYS_ROOT", "/sys")),
            dev=Path(os.environ.get("SPARKTOP_DEV_ROOT", "/dev")),
        )
