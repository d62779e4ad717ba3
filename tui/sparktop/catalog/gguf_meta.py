"""What the KV-cache formula needs, read from a GGUF file's own metadata.

Only the few key/values the shape is built from are decoded (`gguf_header`), and the shape
is kept per (path, size, mtime) across runs (`shape_cache`): a fit check costs milliseconds
instead of seconds of tokenizer parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sparktop.catalog import shape_cache
from sparktop.catalog.gguf_header import GgufFormatError, read_kv


@dataclass(frozen=True)
class GgufShape:
    architecture: str
    layers: int
    kv_heads_per_layer: tuple[int, ...]
    """KV heads of each layer; 0 for layers without attention (Mamba/linear in hybrids)."""
    key_length: int
    value_length: int
    context_length: int | None
    kv_lora_rank: int | None = None
    """MLA models (DeepSeek): the compressed KV width that is cached instead of K and V."""
    rope_dim: int | None = None

    def kv_elements_per_token(self) -> int:
        """Cache elements one token costs across all layers (K and V together)."""
        if self.kv_lora_rank:
            attention_layers = sum(1 for heads in self.kv_heads_per_layer if heads) or self.layers
            return attention_layers * (self.kv_lora_rank + (self.rope_dim or 0))
        return sum(
            heads * (self.key_length + self.value_length) for heads in self.kv_heads_per_layer
        )


class GgufError(Exception):
    pass


_SUFFIXES = (
    ".block_count",
    ".attention.head_count",
    ".attention.head_count_kv",
    ".embedding_length",
    ".attention.key_length",
    ".attention.value_length",
    ".context_length",
    ".attention.kv_lora_rank",
    ".rope.dimension_count",
)
"""The `{arch}.` keys the shape is built from."""


def wanted(key: str) -> bool:
    """Whether the shape is built from `key` (the architecture is not known until read)."""
    return key == "general.architecture" or key.endswith(_SUFFIXES)


def shape_from_values(path: str, values: Mapping[str, Any]) -> GgufShape:
    """The shape from a GGUF's decoded key/values (None or missing: unknown)."""
    arch = values.get("general.architecture")
    if not isinstance(arch, str):
        raise GgufError(f"{path}: GGUF has no general.architecture")
    layers = values.get(f"{arch}.block_count")
    heads = values.get(f"{arch}.attention.head_count")
    kv = values.get(f"{arch}.attention.head_count_kv")
    embd = values.get(f"{arch}.embedding_length")
    if not isinstance(layers, int) or layers <= 0:
        raise GgufError(f"{path}: GGUF has no {arch}.block_count")
    if kv is None:
        kv = heads
    if isinstance(kv, list):
        kv_per_layer = tuple(int(v) for v in kv[:layers])
    elif isinstance(kv, int):
        kv_per_layer = (kv,) * layers
    else:
        raise GgufError(f"{path}: GGUF has no {arch}.attention.head_count_kv")
    head_count = heads[0] if isinstance(heads, list) else heads
    default_dim = embd // head_count if isinstance(embd, int) and head_count else 0
    key_length = values.get(f"{arch}.attention.key_length") or default_dim
    value_length = values.get(f"{arch}.attention.value_length") or key_length
    return GgufShape(
        architecture=arch,
        layers=layers,
        kv_heads_per_layer=kv_per_layer,
        key_length=int(key_length),
        value_length=int(value_length),
        context_length=values.get(f"{arch}.context_length"),
        kv_lora_rank=values.get(f"{arch}.attention.kv_lora_rank"),
        rope_dim=values.get(f"{arch}.rope.dimension_count"),
    )


def _from_record(record: dict[str, Any]) -> GgufShape | None:
    try:
        return GgufShape(**{**record, "kv_heads_per_layer": tuple(record["kv_heads_per_layer"])})
    except (KeyError, TypeError):
        return None


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> GgufShape:
    record = shape_cache.lookup(path, size, mtime_ns)
    shape = _from_record(record) if record is not None else None
    if shape is not None:
        return shape
    try:
        values = read_kv(path, wanted)
    except (OSError, GgufFormatError) as exc:
        raise GgufError(f"{path}: not a readable GGUF file ({exc})") from None
    shape = shape_from_values(path, values)
    shape_cache.store(path, size, mtime_ns, asdict(shape))
    return shape


def read_shape(path: Path) -> GgufShape:
    """Shape of the model in `path` (cached while the file is unchanged)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise GgufError(f"{path}: {exc.strerror}") from None
    return _read(str(path), st.st_mtime_ns, st.st_size)
