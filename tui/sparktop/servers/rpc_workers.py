"""Split serving's RPC workers as this machine sees them: is a worker's port listening, does
the one sparktop started still run, how much memory it holds. The supervisor asks before and
after starting workers, the monitor for `status`.

The rest of split serving (binaries, argv, addresses, pooled memory, remote scripts) is
`sparktop.engines.llama_rpc`; this part reads the process table, which itself asks
the engine adapters, so it lives above both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sparktop.catalog.entry import GB, ModelEntry
from sparktop.engines.llama_cpp import rpc_endpoints
from sparktop.engines.llama_rpc import address_is_local, resolve_address
from sparktop.servers.info import RpcWorkerStatus
from sparktop.servers.procscan import listening_sockets, read_rss
from sparktop.servers.registry import process_matches


def listening_locally(endpoint: str, proc: Path = Path("/proc")) -> bool | None:
    """Is a local endpoint's port in LISTEN state? Read from /proc, no connection made
    (a busy ggml-rpc-server serves one client at a time and would not answer a probe)."""
    address, _, port_text = endpoint.rpartition(":")
    table = listening_sockets(proc, os.getpid())
    if table is None:
        return None
    ip = resolve_address(address.strip("[]"))
    port = int(port_text)
    wild = ("0.0.0.0", "::", ip)
    return any(p == port and a in wild for a, p in table.values())


def worker_statuses(
    recorded: Sequence[dict], argv: Sequence[str], entry: ModelEntry | None, proc: Path
) -> tuple[RpcWorkerStatus, ...]:
    """The RPC workers of one llama-server, as `status` shows them: from sparktop's record,
    else from the `--rpc` of its command line (a split server started elsewhere)."""
    items = [dict(w) for w in recorded if isinstance(w, dict) and w.get("endpoint")]
    if not items:
        items = [{"endpoint": e} for e in rpc_endpoints(argv)]
    configured = {w.endpoint: w for w in entry.rpc.workers} if entry and entry.rpc else {}
    out = []
    for item in items:
        endpoint = str(item["endpoint"])
        worker = configured.get(endpoint)
        host = item.get("host") or (worker.host if worker else None)
        remote = item.get("remote")
        if remote is None:
            remote = not address_is_local(endpoint.rpartition(":")[0].strip("[]"))
        pid = item.get("pid") if item.get("started") and not remote else None
        if pid is not None and not process_matches(proc, pid, int(item.get("start_ticks") or 0)):
            pid = None
        memory = worker.memory_gb if worker else None
        out.append(
            RpcWorkerStatus(
                endpoint=endpoint,
                host=host,
                pid=pid,
                started_by_sparktop=bool(item.get("started")),
                listening=None if remote else listening_locally(endpoint, proc),
                rss_bytes=read_rss(proc, pid) if pid else None,
                memory_bytes=int(memory * GB) if memory is not None else None,
            )
        )
    return tuple(out)
