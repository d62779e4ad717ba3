"""Is a TCP port free, and if not, which process holds it?"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from sparktop.servers.procscan import listening_sockets, read_argv


def port_free(host: str, port: int) -> bool:
    """True when a server could bind host:port now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind_host = host if host not in ("", "*") else "0.0.0.0"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_owner(proc: Path, port: int) -> tuple[int, str] | None:
    """(pid, command) of the process listening on `port` in our namespace, if we may see it."""
    table = listening_sockets(proc, os.getpid()) or {}
    inodes = {inode for inode, (_addr, p) in table.items() if p == port}
    if not inodes:
        return None
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        fd_dir = proc / name / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                argv = read_argv(proc / name / "cmdline")
                return int(name), " ".join(argv)[:120]
    return None
