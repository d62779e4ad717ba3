"""The catalog as both faces list it: each entry with its disk state and fit, and its details."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sparktop.actions.servers import resolve_entry
from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.files import DiskState, disk_state
from sparktop.catalog.fit import FitVerdict
from sparktop.control import Control
from sparktop.servers.info import ServerInfo
from sparktop.units import fmt_bytes

GIB = 1024**3


@dataclass(frozen=True)
class CatalogRow:
    entry: ModelEntry
    disk: DiskState
    fit: FitVerdict

    @property
    def on_disk(self) -> str:
        """`not on disk`, `partial 12.0 GiB`, `verified 49.0 GiB` …"""
        text = self.disk.label
        if self.disk.files or self.disk.partial_bytes:
            text += f" {fmt_bytes(self.disk.present_bytes + self.disk.partial_bytes)}"
        return text

    @property
    def needs(self) -> str:
        return f"{self.fit.need_bytes / GIB:.1f} GiB" if self.fit.need_bytes else "?"

    def to_json(self) -> dict[str, Any]:
        e, d = self.entry, self.disk
        return {
            "name": e.name,
            "engine": e.engine,
            "repo": e.repo,
            "quant": e.quant,
            "served_name": e.serve.served_name,
            "port": e.serve.port,
            "proxy_port": e.serve.proxy.port if e.serve.proxy else None,
            "exclusive": e.serve.exclusive,
            "context": e.serve.context,
            "size_bytes": e.size_bytes,
            "local_dir": str(e.local_dir) if e.local_dir else None,
            "disk": {
                "state": d.label,
                "present_bytes": d.present_bytes,
                "partial_bytes": d.partial_bytes,
                "files": d.files,
                "complete": d.complete,
                "verified": d.verified,
            },
            "fit": self.fit.to_json(),
            "rpc_workers": rpc_json(e),
            "source": e.source,
        }


def entries(control: Control, names: Sequence[str] = ()) -> list[ModelEntry]:
    """The named entries (ActionError for an unknown one), else the whole catalog."""
    if names:
        return [resolve_entry(control, name) for name in names]
    return list(control.catalog)


def rows(
    control: Control, chosen: Sequence[ModelEntry], servers: tuple[ServerInfo, ...]
) -> Iterator[CatalogRow]:
    """Disk state and fit per entry (file stats and GGUF headers: call it off the UI thread)."""
    for entry in chosen:
        yield CatalogRow(entry, disk_state(entry), control.fit(entry, servers))


def rpc_json(entry: ModelEntry) -> list[dict] | None:
    """A catalog entry's llama.cpp RPC workers for `catalog --json` (None: not split)."""
    if entry.rpc is None:
        return None
    return [
        {"endpoint": w.endpoint, "host": w.host, "start": w.start, "memory_gb": w.memory_gb,
         "args": list(w.args)}
        for w in entry.rpc.workers
    ]  # fmt: skip


def rpc_text(entry: ModelEntry) -> str:
    parts = []
    for w in entry.rpc.workers if entry.rpc else ():
        notes = [w.host or "this machine"] + (["start"] if w.start else [])
        if w.memory_gb is not None:
            notes.append(f"{w.memory_gb:g} GB")
        parts.append(f"{w.endpoint} ({', '.join(notes)})")
    return ", ".join(parts)


def details(control: Control, entry: ModelEntry, servers: tuple[ServerInfo, ...]) -> list[str]:
    """Everything about one entry: what it is, where, its fit in parts, the command line."""
    from sparktop.servers.supervisor import ServeError, build_argv

    fit = control.fit(entry, servers)
    try:
        argv = " ".join(build_argv(entry, control.config.engine_binaries))
    except ServeError as exc:
        argv = f"(cannot build: {exc})"
    lines = [
        f"{entry.name} — {entry.description}",
        f"engine {entry.engine}, quant {entry.quant or '?'}, repo {entry.repo or '–'}",
        f"served as {entry.serve.served_name} on {entry.serve.host}:{entry.serve.port}"
        + (f", proxy {entry.serve.proxy.port}" if entry.serve.proxy else ""),
        f"exclusive group: {entry.serve.exclusive or '–'}",
        f"local dir: {entry.local_dir or '–'}",
        "",
        f"fit: {fit.summary()}",
    ]
    for need in fit.needs:
        lines.append(
            f"  weights {fmt_bytes(need.weights_bytes)} ({need.weights_source}); "
            f"KV cache {fmt_bytes(need.kv_bytes)} ({need.kv_source}); "
            f"overhead {fmt_bytes(need.overhead_bytes)}"
        )
    lines += [f"  note: {n}" for n in fit.notes]
    if entry.rpc is not None:
        lines.append(f"rpc workers: {rpc_text(entry)}")
    for speed in entry.speeds:
        lines.append(
            f"known speed on {speed.hardware}: pp {speed.prompt_tps} t/s, tg {speed.gen_tps} t/s"
        )
    lines += ["", "command:", argv, "", f"defined at {entry.source}"]
    return lines
