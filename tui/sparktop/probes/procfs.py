"""Small facts from /proc: host name, uptime, process names (through psutil on this
machine's /proc), container detection."""

from __future__ import annotations

import socket
from pathlib import Path


def hostname(proc_root: Path = Path("/proc")) -> str:
    try:
        name = (proc_root / "sys/kernel/hostname").read_text().strip()
    except OSError:
        name = ""
    return name or socket.gethostname()


def uptime_seconds(proc_root: Path = Path("/proc")) -> float | None:
    try:
        return float((proc_root / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_name(pid: int, proc_root: Path = Path("/proc")) -> str | None:
    """The command name of `pid` (comm, or argv[0]'s base name when comm is truncated)."""
    if proc_root == Path("/proc"):
        import psutil

        try:
            return psutil.Process(pid).name()  # the same rule, psutil's own
        except psutil.Error:
            return None
    # psutil reads the real /proc only (PROCFS_PATH is one setting for the whole process): a
    # fixture machine or a host's /proc mounted elsewhere (SPARKTOP_PROC_ROOT) is read here
    base = proc_root / str(pid)
    try:
        comm = (base / "comm").read_text().strip()
    except OSError:
        return None
    if len(comm) >= 15:  # the kernel truncates comm to 15 bytes; argv[0] has the full name
        try:
            argv0 = (base / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            argv0 = ""
        if argv0:
            name = argv0.rsplit("/", 1)[-1]
            if name.startswith(comm):
                return name
    return comm


def in_container(proc_root: Path = Path("/proc"), root: Path = Path("/")) -> bool:
    """Best-effort: docker/podman marker files or a container cgroup path for PID 1."""
    if (root / ".dockerenv").exists() or (root / "run/.containerenv").exists():
        return True
    try:
        cgroup = (proc_root / "1/cgroup").read_text()
    except OSError:
        return False
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "libpod", "lxc"))
