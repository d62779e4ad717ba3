"""GGUF headers with a tokenizer the size of Qwen's (152,064 tokens, 151,387 merges), written with
`gguf.GGUFWriter`: what makes a full parse slow. The tensors are a few tiny ones; the file is
for reading metadata, not for serving.

The model's own keys come after the tokenizer's arrays, so a reader has to step over them to
find the keys the fit needs; `tricky=True` mixes in the strings a fast skip could get wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

QWEN_TOKENS, QWEN_MERGES = 152064, 151387
TRICKY = ["", "\x00", "\x00" * 9, "ü" * 40, "a" * 255, "b" * 256, "c" * 300, "d" * 70000]
"""Empty, NUL bytes that look like a length's zero bytes, multi-byte, 255/256 bytes (the
short-string pattern's limit) and longer."""


def _strings(prefix: str, count: int, tricky: bool) -> list[str]:
    items = [f"{prefix}{i}" for i in range(count)]
    if tricky:
        for n, text in enumerate(TRICKY):
            for at in (n * 997 + 5, count - 1 - n * 131):
                items[at % count] = text
    return items


def write_big_vocab(
    path: Path | str,
    *,
    tokens: int = QWEN_TOKENS,
    merges: int = QWEN_MERGES,
    layers: int = 28,
    tricky: bool = False,
    big_endian: bool = False,
) -> Path:
    """Write a qwen2-shaped GGUF header with a tokenizer of `tokens` tokens, `merges` merges."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    endian = gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE
    writer = gguf.GGUFWriter(str(path), "qwen2", endianess=endian)
    writer.add_name("big-vocab")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(_strings("tok", tokens, tricky))
    writer.add_token_types([1] * tokens)
    writer.add_token_scores([0.0] * tokens)
    writer.add_token_merges(_strings("m ", merges, tricky))
    writer.add_context_length(32768)
    writer.add_embedding_length(3584)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(18944)
    writer.add_head_count(28)
    writer.add_head_count_kv([4 if i % 2 else 0 for i in range(layers)])
    writer.add_key_length(128)
    writer.add_value_length(128)
    writer.add_rope_dimension_count(128)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_chat_template("{{ messages }}")
    for name in ("token_embd.weight", "output_norm.weight", "output.weight"):
        writer.add_tensor(name, np.zeros(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def full_parse(path: Path | str) -> dict[str, Any]:
    """Every key/value as the fit's old reader got them: gguf.GGUFReader parses the whole
    file, `contents()` decodes each field (None where that raises)."""
    import gguf

    def contents(field: Any) -> Any:
        try:
            return field.contents()
        except Exception:
            return None

    fields = gguf.GGUFReader(str(path), "r").fields
    return {k: contents(f) for k, f in fields.items() if not k.startswith("GGUF.")}
