"""Find inference servers in the process table (/proc), cheaply enough to run every few seconds.

Each new PID's command line is read once and classified; known PIDs cost one directory entry
per scan. Candidates are re-checked by start time, so a recycled PID is noticed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sparktop.probes import ProbeRoots
from sparktop.engines import Launch, classify

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    ppid: int
    pgid: int
    start_ticks: int
    argv: tuple[str, ...]
    launch: Launch
    rss_bytes: int | None
    children: tuple[int, ...] = ()
    """Worker processes of this server (vLLM EngineCore, SGLang scheduler…)."""
    children_rss_bytes: int = 0
    state: str = "R"

    @property
    def total_rss_bytes(self) -> int | None:
        if self.rss_bytes is None:
            return None
        return self.rss_bytes + self.children_rss_bytes


def read_argv(path: Path) -> tuple[str, ...]:
    try:
        raw = path.read_bytes()
    except OSError:
        return ()
    parts = [p.decode("utf-8", "replace") for p in raw.split(b"\0")]
    while parts and not parts[-1]:
        parts.pop()
    if len(parts) == 1 and " " in parts[0]:
        # setproctitle (vLLM, SGLang workers) may leave one space-joined string
        parts = parts[0].split()
    return tuple(parts)


@dataclass(frozen=True)
class Stat:
    ppid: int
    pgid: int
    start_ticks: int
    state: str
    comm: str = ""
    """The program name; exec changes it (and the command line) but not the PID or start."""


LAUNCHERS = frozenset(
    {
        "sh", "bash", "dash", "zsh", "ash", "fish", "env", "nohup", "setsid", "timeout",
        "nice", "ionice", "chrt", "taskset", "numactl", "stdbuf", "sudo", "su", "runuser",
        "tini", "dumb-init", "uv", "uvx", "conda", "micromamba", "pixi", "srun",
    }
)  # fmt: skip


def _may_exec(comm: str) -> bool:
    """Processes that often become a server by exec (`bash serve.sh` ending in `exec vllm
    serve`, `env CUDA_VISIBLE_DEVICES=0 llama-server`, a Python wrapper): looked at again."""
    return comm in LAUNCHERS or comm.startswith("python")


def read_stat(proc: Path, pid: int) -> Stat | None:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    close = text.rfind(")")
    rest = text[close + 2 :].split()
    comm = text[text.find("(") + 1 : close]
    try:
        return Stat(
            ppid=int(rest[1]), pgid=int(rest[2]), start_ticks=int(rest[19]), state=rest[0],
            comm=comm,
        )  # fmt: skip
    except (IndexError, ValueError):
        return None


def read_rss(proc: Path, pid: int) -> int | None:
    try:
        fields = (proc / str(pid) / "statm").read_text().split()
        return int(fields[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def _hex_addr(text: str) -> str:
    if len(text) == 8:
        return ".".join(str(b) for b in bytes.fromhex(text)[::-1])
    words = [bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, 32, 8)]
    raw = b"".join(words)
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return ".".join(str(b) for b in raw[12:])
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def listening_sockets(proc: Path, pid: int) -> dict[int, tuple[str, int]] | None:
    """inode → (address, port) of the TCP sockets in LISTEN state in pid's network namespace."""
    out: dict[int, tuple[str, int]] = {}
    found = False
    for name in ("tcp", "tcp6"):
        try:
            text = (proc / str(pid) / "net" / name).read_text()
        except OSError:
            continue
        found = True
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":
                continue
            addr, _, port = fields[1].partition(":")
            try:
                out[int(fields[9])] = (_hex_addr(addr), int(port, 16))
            except ValueError:
                continue
    return out if found else None


def socket_inodes(proc: Path, pid: int) -> set[int] | None:
    """Inodes of pid's open sockets; None when we may not look (another user's process)."""
    fd_dir = proc / str(pid) / "fd"
    inodes = set()
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def net_namespace(proc: Path, pid: int) -> int | None:
    """The inode of pid's network namespace (same number: same socket table)."""
    try:
        return os.stat(proc / str(pid) / "ns" / "net").st_ino
    except OSError:
        return None


def listening_ports(
    proc: Path, pids: list[int], tables: dict[object, dict | None] | None = None
) -> list[tuple[str, int]] | None:
    """(address, port) pairs that any of `pids` listens on; None if unknown.

    The socket table is the dear part (the kernel walks its whole TCP hash for it: about
    1 ms a read here, more on a 128 GB box); pass the same `tables` to read it once per
    network namespace for several servers."""
    namespace = net_namespace(proc, pids[0])
    key: object = namespace if namespace is not None else ("pid", pids[0])
    if tables is not None and key in tables:
        table = tables[key]
    else:
        table = listening_sockets(proc, pids[0])
        if tables is not None:
            tables[key] = table
    if table is None:
        return None
    result: list[tuple[str, int]] = []
    known = False
    for pid in pids:
        inodes = socket_inodes(proc, pid)
        if inodes is None:
            continue
        known = True
        for inode in inodes:
            if inode in table and table[inode] not in result:
                result.append(table[inode])
    return sorted(result, key=lambda a: a[1]) if known else None


class ProcessScanner:
    """Incremental scan of /proc for inference-server processes."""

    def __init__(self, roots: ProbeRoots | None = None) -> None:
        self.proc = (roots or ProbeRoots.from_env()).proc
        self._seen: dict[int, tuple[tuple[int, str], Launch | None, tuple[str, ...]]] = {}
        """pid → ((start ticks, program name), launch or None for no server, argv): read
        again only when the process is new or has exec'd (`bash run.sh` → `exec vllm serve`)."""
        self._families: tuple[frozenset, dict[int, list[int]]] | None = None

    def scan(self) -> list[ServerProcess]:
        try:
            names = os.listdir(self.proc)
        except OSError:
            return []
        pids = {int(n) for n in names if n.isdigit()}
        for gone in set(self._seen) - pids:
            del self._seen[gone]
        found: dict[int, tuple[Stat, tuple[str, ...], Launch]] = {}
        for pid in pids:
            cached = self._seen.get(pid)
            if cached is not None and cached[1] is None and not _may_exec(cached[0][1]):
                continue  # no server, and not a launcher that may exec one: not read again
            stat = read_stat(self.proc, pid)
            if stat is None:
                continue
            if cached is None or cached[0] != (stat.start_ticks, stat.comm):
                argv = read_argv(self.proc / str(pid) / "cmdline")
                launch = classify(argv) if argv else None
                cached = self._seen[pid] = ((stat.start_ticks, stat.comm), launch, argv)
            if cached[1] is None:
                continue
            _ticks, launch, argv = cached  # a process's command line is fixed at its start
            assert launch is not None
            if stat.state == "Z":
                continue
            found[pid] = (stat, argv, launch)
        return self._group(found)

    def _group(self, found: dict[int, tuple[Stat, tuple[str, ...], Launch]]) -> list[ServerProcess]:
        """Fold worker processes into the server they belong to."""
        members = frozenset((pid, item[0].start_ticks) for pid, item in found.items())
        if self._families is not None and self._families[0] == members:
            children = self._families[1]  # same processes as last scan: same families
        else:
            children = {}
            for pid, (_stat, _argv, launch) in found.items():
                parent = self._server_ancestor(pid, found)
                if parent is not None and (launch.role == "child" or parent != pid):
                    children.setdefault(parent, []).append(pid)
            self._families = (members, children)
        servers = []
        child_pids = {c for kids in children.values() for c in kids}
        for pid, (stat, argv, launch) in found.items():
            if launch.role != "server" or pid in child_pids:
                continue
            kids = tuple(sorted(children.get(pid, [])))
            servers.append(
                ServerProcess(
                    pid=pid,
                    ppid=stat.ppid,
                    pgid=stat.pgid,
                    start_ticks=stat.start_ticks,
                    argv=argv,
                    launch=launch,
                    rss_bytes=read_rss(self.proc, pid),
                    children=kids,
                    children_rss_bytes=sum(read_rss(self.proc, k) or 0 for k in kids),
                    state=stat.state,
                )
            )
        return sorted(servers, key=lambda s: (s.launch.port or 0, s.pid))

    def _server_ancestor(self, pid: int, found: dict) -> int | None:
        """The nearest ancestor of pid that is itself a server of the same engine."""
        engine = found[pid][2].engine
        current = found[pid][0].ppid
        for _ in range(8):
            launch = found[current][2] if current in found else None
            if launch is not None and (launch.engine, launch.role) == (engine, "server"):
                return current
            stat = found[current][0] if current in found else read_stat(self.proc, current)
            if stat is None or current <= 1:
                return None
            current = stat.ppid
        return None


def process_age(proc: Path, start_ticks: int) -> float | None:
    """Seconds since the process started, from the time since boot (/proc/uptime): unlike
    the wall clock, it does not jump when NTP or a user sets the time."""
    from sparktop.probes.procfs import uptime_seconds

    up = uptime_seconds(proc)
    return max(0.0, up - start_ticks / TICKS) if up is not None else None
