"""Find inference servers in the process table, cheaply enough to run every few seconds.

The table is read through psutil (PIDs, command lines, parents, states, start times, RSS).
Each new PID's command line is read once and classified; known PIDs cost one directory entry
per scan. Candidates are re-checked by start time, so a recycled PID is noticed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sparktop.engines import Launch, classify
from sparktop.probes import ProbeRoots
from sparktop.servers.netns import PUBLISHERS

if TYPE_CHECKING:
    import psutil

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
REAL_PROC = Path("/proc")
TEST_RUN = "SPARKTOP_TEST_RUN"
"""Test-only scope: when sparktop itself runs with SPARKTOP_TEST_RUN=<token>, it sees only
servers whose environment carries the same entry (the test suite's own processes and their
children), so a box that is serving models of its own never confuses the tests."""


def _scope() -> bytes | None:
    token = os.environ.get(TEST_RUN)
    return f"{TEST_RUN}={token}".encode() if token else None


def carries(proc: Path, pid: int, entry: bytes) -> bool:
    """True when process `pid` was started with `entry` (KEY=VALUE) in its environment.

    Own code: psutil's environ() decodes the whole block into a dict; one entry is wanted.
    """
    try:
        return entry in (proc / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


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
    cpu_s: float | None = None
    """CPU time (user + system, all threads) of the server and its workers, in seconds."""

    @property
    def total_rss_bytes(self) -> int | None:
        if self.rss_bytes is None:
            return None
        return self.rss_bytes + self.children_rss_bytes


@dataclass(frozen=True)
class Stat:
    ppid: int
    pgid: int
    start_ticks: int
    """Clock ticks from boot to the process's start (/proc/PID/stat field 22): the process's
    identity with its PID, kept in sparktop's records."""
    state: str
    comm: str = ""
    """The program name; exec changes it (and the command line) but not the PID or start."""
    cpu_s: float | None = None
    """CPU time used so far, user + system (fields 14 and 15), in seconds."""


class _Table(Protocol):
    """The few facts the scanner reads about processes."""

    def pids(self) -> set[int]: ...
    def forget(self, pid: int) -> None: ...
    def look(self, pid: int) -> tuple[object, str, str] | None: ...
    def stat(self, pid: int) -> Stat | None: ...
    def argv(self, pid: int) -> tuple[str, ...]: ...
    def rss(self, pid: int) -> int | None: ...


def _tidy_argv(parts: list[str]) -> tuple[str, ...]:
    while parts and not parts[-1]:
        parts.pop()
    if len(parts) == 1 and " " in parts[0]:
        # setproctitle (vLLM, SGLang workers) may leave one space-joined string
        parts = parts[0].split()
    return tuple(parts)


_STATES = {
    "running": "R", "sleeping": "S", "disk-sleep": "D", "stopped": "T", "tracing-stop": "t",
    "zombie": "Z", "dead": "X", "wake-kill": "K", "waking": "W", "parked": "P", "idle": "I",
}  # fmt: skip
"""psutil's status names (its STATUS_* values) → the kernel's one-letter states."""


class _PsutilTable:
    """Processes through psutil. Process objects are kept between scans (as psutil's
    process_iter keeps them) for the PIDs the scanner looks at again; psutil compares a kept
    one with the PID's present process by start time, so a recycled PID is read afresh."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._procs: dict[int, tuple[psutil.Process, int | None]] = {}
        """pid → (process, start ticks once asked)."""

    def pids(self) -> set[int]:
        pids = set(self._psutil.pids())
        for gone in self._procs.keys() - pids:
            del self._procs[gone]
        return pids

    def forget(self, pid: int) -> None:
        self._procs.pop(pid, None)

    def _process(self, pid: int, fresh: bool = False) -> psutil.Process | None:
        entry = None if fresh else self._procs.get(pid)
        if entry is None:
            try:
                entry = self._procs[pid] = (self._psutil.Process(pid), None)
            except self._psutil.Error:
                self._procs.pop(pid, None)
                return None
        return entry[0]

    def _ticks(self, pid: int, process: psutil.Process) -> int:
        """Clock ticks from boot to the start: psutil's start time is boot time + ticks /
        TICKS on the wall clock, read back against the boot time read with it."""
        entry = self._procs.get(pid)
        if entry is not None and entry[0] is process and entry[1] is not None:
            return entry[1]
        ticks = round((process.create_time() - self._psutil.boot_time()) * TICKS)
        self._procs[pid] = (process, ticks)
        return ticks

    def look(self, pid: int) -> tuple[object, str, str] | None:
        """(identity, name, state) for the scanner's check of a candidate each scan. The
        identity is psutil's Process, equal to another for the same PID and start time."""
        process = self._process(pid)
        try:
            if process is not None and not process.is_running():  # gone, or the PID recycled
                process = self._process(pid, fresh=True)
            if process is None:
                return None
            with process.oneshot():
                return process, process.name(), _STATES.get(process.status(), "?")
        except self._psutil.Error:
            return None

    def stat(self, pid: int) -> Stat | None:
        for fresh in (False, True):
            process = self._process(pid, fresh)
            if process is None:
                return None
            try:
                with process.oneshot():
                    ppid = process.ppid()  # NoSuchProcess here too when the PID was recycled
                    state = _STATES.get(process.status(), "?")
                    comm = process.name()
                    times = process.cpu_times()  # the same read of /proc/PID/stat
                pgid = os.getpgid(pid)
                ticks = self._ticks(pid, process)
            except self._psutil.NoSuchProcess:
                continue  # gone, or another process now: asked once more, afresh
            except (self._psutil.Error, OSError):
                return None
            return Stat(ppid=ppid, pgid=pgid, start_ticks=ticks, state=state, comm=comm,
                        cpu_s=times.user + times.system)  # fmt: skip
        return None

    def argv(self, pid: int) -> tuple[str, ...]:
        process = self._process(pid)
        try:
            parts = process.cmdline() if process is not None else []
        except self._psutil.Error:
            return ()
        # psutil decodes with the file-system encoding (undecodable bytes as surrogates)
        return _tidy_argv([p.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                           for p in parts])  # fmt: skip

    def rss(self, pid: int) -> int | None:
        process = self._process(pid)
        try:
            return process.memory_info().rss if process is not None else None
        except self._psutil.Error:
            return None


class _FileTable:
    """Processes from a proc tree that is not this machine's /proc: psutil reads the real
    /proc only (its PROCFS_PATH is one setting for the whole process), so a test's fixture
    machine or a host's /proc mounted into a container (SPARKTOP_PROC_ROOT) is read here."""

    def __init__(self, proc: Path) -> None:
        self.proc = proc

    def forget(self, pid: int) -> None:
        return None

    def pids(self) -> set[int]:
        try:
            return {int(n) for n in os.listdir(self.proc) if n.isdigit()}
        except OSError:
            return set()

    def look(self, pid: int) -> tuple[object, str, str] | None:
        stat = self.stat(pid)
        return (stat.start_ticks, stat.comm, stat.state) if stat is not None else None

    def stat(self, pid: int) -> Stat | None:
        try:
            text = (self.proc / str(pid) / "stat").read_text()
        except OSError:
            return None
        # the command name may contain spaces and parentheses: split after the last ')'
        close = text.rfind(")")
        rest = text[close + 2 :].split()
        comm = text[text.find("(") + 1 : close]
        try:
            return Stat(
                ppid=int(rest[1]), pgid=int(rest[2]), start_ticks=int(rest[19]),
                state=rest[0], comm=comm, cpu_s=(int(rest[11]) + int(rest[12])) / TICKS,
            )  # fmt: skip
        except (IndexError, ValueError):
            return None

    def argv(self, pid: int) -> tuple[str, ...]:
        return _file_argv(self.proc / str(pid) / "cmdline")

    def rss(self, pid: int) -> int | None:
        try:
            fields = (self.proc / str(pid) / "statm").read_text().split()
            return int(fields[1]) * PAGE
        except (OSError, IndexError, ValueError):
            return None


def _file_argv(path: Path) -> tuple[str, ...]:
    try:
        raw = path.read_bytes()
    except OSError:
        return ()
    return _tidy_argv([p.decode("utf-8", "replace") for p in raw.split(b"\0")])


def _table(proc: Path) -> _Table:
    return _PsutilTable() if proc == REAL_PROC else _FileTable(proc)


def read_argv(path: Path) -> tuple[str, ...]:
    """The command line in `path` (PROC/PID/cmdline)."""
    pid = path.parent.name
    if path.name == "cmdline" and pid.isdigit() and path.parent.parent == REAL_PROC:
        return _PsutilTable().argv(int(pid))
    return _file_argv(path)


def read_stat(proc: Path, pid: int) -> Stat | None:
    return _table(proc).stat(pid)


def read_rss(proc: Path, pid: int) -> int | None:
    return _table(proc).rss(pid)


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


def _looked_again(comm: str) -> bool:
    """Launchers, and port publishers (whose command line says where a container is)."""
    return _may_exec(comm) or comm in PUBLISHERS


# Socket tables are read here, per network namespace, from /proc/PID/net/tcp*, and a
# process's sockets from its /proc/PID/fd links: psutil.net_connections reads only this
# process's own namespace (a server in a container has its own) and needs root for other
# users' sockets, so this stays own code.


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
            text = _read_whole(proc / str(pid) / "net" / name)
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


def _read_whole(path: Path, chunk: int = 1 << 20) -> str:
    """A /proc table in as few read() calls as it allows: the kernel builds it a buffer per
    call and can skip a socket that moved between two calls (a busy box has thousands in
    TIME_WAIT); Path.read_text asks for 8 KiB at a time."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while block := os.read(fd, chunk):
            parts.append(block)
    finally:
        os.close(fd)
    return b"".join(parts).decode("ascii", "replace")


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
        self._table = _table(self.proc)
        self._seen: dict[int, tuple[object, str, Launch | None, tuple[str, ...]]] = {}
        """pid → (identity, program name, launch or None for no server, argv): read again
        only when the process is new or has exec'd (`bash run.sh` → `exec vllm serve`). The
        identity (start ticks, or psutil's Process) is kept for those looked at again."""
        self._families: tuple[frozenset, dict[int, list[int]]] | None = None
        self.published: dict[int, tuple[str, ...]] = {}
        """pid → command line of the host's port publishers (docker-proxy), kept by scan()."""
        self._scope = _scope() if self.proc == REAL_PROC else None  # fixture trees: all theirs

    def scan(self) -> list[ServerProcess]:
        pids = self._table.pids()
        if not pids:
            return []
        for gone in set(self._seen) - pids:
            del self._seen[gone]
            self.published.pop(gone, None)
        found: dict[int, tuple[Stat, tuple[str, ...], Launch]] = {}
        for pid in pids:
            cached = self._seen.get(pid)
            if cached is not None and cached[2] is None and not _looked_again(cached[1]):
                continue  # no server, and not a launcher that may exec one: not read again
            seen = self._table.look(pid)
            if seen is None:
                continue
            identity, comm, state = seen
            if cached is None or cached[0] != identity or cached[1] != comm:
                argv = self._table.argv(pid)
                launch = classify(argv) if argv else None
                # test-only scope: not one of the suite's servers. Children are not asked (a
                # process title set by setproctitle, vLLM's VLLM::EngineCore, overwrites
                # /proc/PID/environ); they only fold into a server that is in scope.
                scoped = launch is not None and launch.role != "child" and self._scope
                if scoped and not carries(self.proc, pid, self._scope):
                    launch = None
                self._publisher(pid, comm, argv)
                again = launch is not None or _looked_again(comm)
                if not again:
                    self._table.forget(pid)  # not read again while it lives
                cached = (identity if again else None, comm, launch, argv if launch else ())
                self._seen[pid] = cached
            _identity, _comm, launch, argv = cached  # the command line is fixed at exec
            if launch is None:
                continue
            if state == "Z":
                continue
            stat = self._table.stat(pid)
            if stat is not None:
                found[pid] = (stat, argv, launch)
        return self._group(found)

    def _publisher(self, pid: int, comm: str, argv: tuple[str, ...]) -> None:
        """Keep (or drop) pid's command line as a port publisher's."""
        mine = not self._scope or carries(self.proc, pid, self._scope)
        if comm in PUBLISHERS and mine:
            self.published[pid] = argv
        else:
            self.published.pop(pid, None)

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
                    rss_bytes=self._table.rss(pid),
                    children=kids,
                    children_rss_bytes=sum(self._table.rss(k) or 0 for k in kids),
                    state=stat.state,
                    cpu_s=_cpu_total([stat, *(found[k][0] for k in kids)]),
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
            stat = found[current][0] if current in found else self._table.stat(current)
            if stat is None or current <= 1:
                return None
            current = stat.ppid
        return None


def _cpu_total(stats: list[Stat]) -> float | None:
    """CPU seconds of a server's processes together; None when one of them is unreadable."""
    times = [s.cpu_s for s in stats]
    return None if any(t is None for t in times) else sum(t for t in times if t is not None)


def process_age(proc: Path, start_ticks: int) -> float | None:
    """Seconds since the process started, from the time since boot: unlike the wall clock
    (which psutil's start times are on), it does not jump when NTP or a user sets the time.
    On this machine that is CLOCK_BOOTTIME, what /proc/uptime reads; elsewhere PROC/uptime."""
    if proc == REAL_PROC and hasattr(time, "CLOCK_BOOTTIME"):
        up: float | None = time.clock_gettime(time.CLOCK_BOOTTIME)
    else:
        from sparktop.probes.procfs import uptime_seconds

        up = uptime_seconds(proc)
    return max(0.0, up - start_ticks / TICKS) if up is not None else None
