"""Will it fit? Weights + KV cache + engine overhead against the unified pool as it is now.

weights  real file sizes when the files are on disk, else the catalog's size_gb
kv cache 2 (K,V) x layers x kv_heads x head_dim x context x bytes per element, from the GGUF's
         own metadata when it is on disk, else from the entry's `architecture`
overhead the engine adapter's: llama.cpp 1.5 GiB of compute buffers and runtime; vLLM and
         SGLang preallocate a fraction of the whole pool (--gpu-memory-utilization, default
         0.9; --mem-fraction-static, default 0.88), so that fraction is what they need
available MemAvailable now, plus what the servers that would be stopped hold (RSS + GPU);
         split serving (llama.cpp RPC) adds each other host's memory once (`memory_gb`)

Which flags set context and cache types, and which file tells the model's shape, are the
adapter's too (`sparktop.engines`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sparktop.catalog.entry import ModelEntry
from sparktop.catalog.files import local_files, model_path
from sparktop.catalog.gguf_meta import GgufError, read_shape
from sparktop.engines import adapter
from sparktop.engines.llama_rpc import pooled_memory

GIB = 1024**3

CACHE_BYTES = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "q4_1": 20 / 32,
    "iq4_nl": 18 / 32,
    "q5_0": 22 / 32,
    "q5_1": 24 / 32,
}

FITS, TIGHT, NO_FIT, UNKNOWN = "fits", "tight", "does not fit", "unknown"


@dataclass(frozen=True)
class Need:
    """Memory one entry needs once serving, with where each number came from."""

    name: str
    weights_bytes: int | None
    weights_source: str
    kv_bytes: int | None
    kv_source: str
    overhead_bytes: int
    context: int | None
    preallocated_bytes: int | None = None
    """vLLM/SGLang: the pool fraction they claim at start, whatever the model needs."""

    @property
    def total_bytes(self) -> int | None:
        if self.weights_bytes is None:
            return None
        own = self.weights_bytes + (self.kv_bytes or 0) + self.overhead_bytes
        return max(own, self.preallocated_bytes or 0)


@dataclass(frozen=True)
class FitVerdict:
    verdict: str
    need_bytes: int | None
    available_bytes: int
    freed_bytes: int
    headroom_bytes: int | None
    needs: tuple[Need, ...]
    notes: tuple[str, ...] = field(default=())
    hosts: tuple[tuple[str, int | None], ...] = field(default=())
    """Split serving: (host, available bytes) per host pooled; this machine first."""

    def summary(self) -> str:
        """One line with the numbers, e.g. for a refusal."""
        avail = self.available_bytes + self.freed_bytes
        if self.need_bytes is None:
            return f"size unknown; {_gib(avail)} available"
        freed = ""
        if self.freed_bytes >= 0.05 * 2**30:  # what would round to "0.0 GiB" says nothing
            freed = f" (incl. {_gib(self.freed_bytes)} freed by stopping)"
        pooled = ""
        if len(self.hosts) > 1:
            parts = [f"{h} {_gib(b) if b is not None else '?'}" for h, b in self.hosts]
            pooled = f" pooled over {len(self.hosts)} hosts ({' + '.join(parts)})"
        return (
            f"{self.verdict}: needs {_gib(self.need_bytes)}, {_gib(avail)} available{pooled}{freed}"
        )

    def to_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "need_bytes": self.need_bytes,
            "available_bytes": self.available_bytes,
            "freed_bytes": self.freed_bytes,
            "headroom_bytes": self.headroom_bytes,
            "needs": [
                {
                    "name": n.name,
                    "weights_bytes": n.weights_bytes,
                    "weights_source": n.weights_source,
                    "kv_cache_bytes": n.kv_bytes,
                    "kv_cache_source": n.kv_source,
                    "overhead_bytes": n.overhead_bytes,
                    "preallocated_bytes": n.preallocated_bytes,
                    "context": n.context,
                    "total_bytes": n.total_bytes,
                }
                for n in self.needs
            ],
            "notes": list(self.notes),
            "hosts": [{"host": h, "available_bytes": b} for h, b in self.hosts],
        }


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def cache_type(entry: ModelEntry) -> tuple[str, str]:
    return adapter(entry.engine).cache_types(entry.serve.args, entry.serve.cache_type)


def context_of(entry: ModelEntry) -> int | None:
    return adapter(entry.engine).context_of(entry.serve.args, entry.serve.context)


def estimate_need(entry: ModelEntry, pool_total_bytes: int) -> Need:
    files = local_files(entry)
    if files:
        weights: int | None = sum(p.stat().st_size for p in files)
        weights_source = f"{len(files)} file(s) on disk"
    elif entry.size_bytes is not None:
        weights, weights_source = entry.size_bytes, "catalog size_gb"
    else:
        weights, weights_source = None, "unknown (not on disk, no size_gb)"
    context = context_of(entry)
    kv: int | None = None
    kv_source = "unknown"
    k_type, v_type = cache_type(entry)
    per_elem = (CACHE_BYTES.get(k_type, 2.0) + CACHE_BYTES.get(v_type, 2.0)) / 2
    engine = adapter(entry.engine)
    path = engine.kv_shape_file(model_path(entry))
    shape = None
    if path is not None and path.suffix == ".gguf" and path.is_file():
        try:
            shape = read_shape(path)
        except GgufError as exc:
            kv_source = str(exc)
    if shape is not None:
        context = context or shape.context_length
        if context:
            kv = int(shape.kv_elements_per_token() * context * per_elem)
            kv_source = f"GGUF metadata ({shape.architecture}, {shape.layers} layers, {k_type})"
    elif entry.architecture is not None and context:
        arch = entry.architecture
        layers = arch.attention_layers or arch.layers
        kv = int(2 * layers * arch.kv_heads * arch.head_dim * context * per_elem)
        kv_source = f"catalog architecture ({layers} attention layers, {k_type})"
    elif not context:
        kv_source = "unknown (no context size)"
    env = {**os.environ, **dict(entry.serve.env)}  # what the engine sparktop starts sees
    told = engine.kv_cache_told(entry.serve.args, env)
    if told is not None:  # allocated at start whatever the context: that is what it takes
        kv, kv_source = told[0], f"{told[1]}, allocated at start"
    return Need(
        name=entry.name,
        weights_bytes=weights,
        weights_source=weights_source,
        kv_bytes=kv,
        kv_source=kv_source,
        overhead_bytes=engine.overhead_bytes,
        context=context,
        preallocated_bytes=engine.preallocated_bytes(entry.serve.args, pool_total_bytes, env),
    )


def reserve_bytes(pool_total_bytes: int) -> int:
    """Headroom below which a fit is called tight: the OS and sparktop need room too."""
    return max(4 * GIB, int(0.05 * pool_total_bytes))


def check_fit(
    entries: Iterable[ModelEntry],
    *,
    available_bytes: int,
    pool_total_bytes: int,
    freed_bytes: int = 0,
) -> FitVerdict:
    """Verdict for serving `entries` together, after freeing `freed_bytes`."""
    entries = list(entries)
    needs = tuple(estimate_need(e, pool_total_bytes) for e in entries)
    notes = []
    hosts = _pooled_hosts(entries, available_bytes, notes)
    available_bytes += sum(b or 0 for _h, b in hosts[1:])
    for need in needs:
        if need.kv_bytes is None:
            notes.append(f"{need.name}: KV cache {need.kv_source}; counted as 0")
        if need.preallocated_bytes:
            notes.append(
                f"{need.name}: engine preallocates {_gib(need.preallocated_bytes)} of the pool"
            )
    totals = [n.total_bytes for n in needs]
    if any(t is None for t in totals):
        return FitVerdict(
            UNKNOWN, None, available_bytes, freed_bytes, None, needs, tuple(notes), hosts
        )
    need = sum(t for t in totals if t is not None)
    headroom = available_bytes + freed_bytes - need
    if headroom >= reserve_bytes(pool_total_bytes):
        verdict = FITS
    elif headroom >= 0:
        verdict = TIGHT
    else:
        verdict = NO_FIT
    return FitVerdict(
        verdict, need, available_bytes, freed_bytes, headroom, needs, tuple(notes), hosts
    )


def _pooled_hosts(
    entries: Sequence[ModelEntry], local_available: int, notes: list[str]
) -> tuple[tuple[str, int | None], ...]:
    """Hosts whose memory split-served entries pool: each host once, this machine first."""
    if not any(e.rpc for e in entries):
        return ()
    hosts: dict[str, int | None] = {}
    for entry in entries:
        for share in pooled_memory(entry, local_available):
            if share.available_bytes is None:
                notes.append(f"{entry.name}: memory of {share.host} {share.source}; counted as 0")
            old = hosts.get(share.host)
            hosts[share.host] = max(old or 0, share.available_bytes or 0) or share.available_bytes
    return tuple(hosts.items())
