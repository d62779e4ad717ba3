"""What the KV-cache formula needs, read from a GGUF file's own metadata (`gguf` package)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


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


def _field(fields: dict[str, Any], key: str) -> Any:
    item = fields.get(key)
    if item is None:
        return None
    try:
        return item.contents()
    except Exception:  # an odd field type: treat as unknown
        return None


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> GgufShape:
    import gguf

    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as exc:
        raise GgufError(f"{path}: not a readable GGUF file ({exc})") from None
    fields = reader.fields
    arch = _field(fields, "general.architecture")
    if not isinstance(arch, str):
        raise GgufError(f"{path}: GGUF has no general.architecture")
    layers = _field(fields, f"{arch}.block_count")
    heads = _field(fields, f"{arch}.attention.head_count")
    kv = _field(fields, f"{arch}.attention.head_count_kv")
    embd = _field(fields, f"{arch}.embedding_length")
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
    key_length = _field(fields, f"{arch}.attention.key_length") or default_dim
    value_length = _field(fields, f"{arch}.attention.value_length") or key_length
    return GgufShape(
        architecture=arch,
        layers=layers,
        kv_heads_per_layer=kv_per_layer,
        key_length=int(key_length),
        value_length=int(value_length),
        context_length=_field(fields, f"{arch}.context_length"),
        kv_lora_rank=_field(fields, f"{arch}.attention.kv_lora_rank"),
        rope_dim=_field(fields, f"{arch}.rope.dimension_count"),
    )


def read_shape(path: Path) -> GgufShape:
    """Shape of the model in `path` (cached while the file is unchanged)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise GgufError(f"{path}: {exc.strerror}") from None
    return _read(str(path), st.st_mtime_ns, st.st_size)
