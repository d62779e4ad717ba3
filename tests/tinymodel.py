"""Tiny random-weight llama models written with `gguf.GGUFWriter`, served by a real llama-server.

The vocabulary is a SentencePiece-style ("llama") one: <unk>, <s>, </s>, the 256 byte tokens
``<0x00>``…``<0xFF>`` and a few word pieces, so any text tokenizes and any output detokenizes.
The weights are random, so the model babbles: exactly what the coherence check must flag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

WORD_PIECES = [
    "▁the", "▁a", "▁is", "▁of", "▁and", "▁to", "▁in", "▁it", "▁that", "▁model",
    "▁hello", "▁world", "▁code", "▁test", "e", "t", "a", "o", "i", "n", "s", "r", "h", "l",
    "▁", "▁I", "▁you", "▁we", "▁on", "▁for", "▁with", "▁as", "▁be", "▁this", "▁are", "▁not",
    "▁or", "▁by", "▁from", "▁at", "▁an",
]  # fmt: skip


def vocabulary(size: int = 300) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a byte-fallback SPM vocabulary of `size` entries."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]  # UNKNOWN, CONTROL, CONTROL
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256  # BYTE
    pieces = list(WORD_PIECES)
    filler = 0
    while len(tokens) + len(pieces) < size:
        pieces.append(f"▁w{filler}")
        filler += 1
    for piece in pieces[: size - len(tokens)]:
        tokens.append(piece)
        types.append(1)  # NORMAL
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, types


def write_tiny_llama(
    path: Path | str,
    *,
    layers: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_kv_head: int = 2,
    n_ff: int = 128,
    context: int = 4096,
    vocab_size: int = 300,
    seed: int = 0,
    name: str = "tiny-llama",
) -> Path:
    """Write a random-weight llama GGUF (f32 tensors) and return its path."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(context)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv_head)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens, scores, types = vocabulary(vocab_size)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int, scale: float = 0.02) -> None:
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        writer.add_tensor(name, data)

    def ones(name: str, size: int) -> None:
        writer.add_tensor(name, np.ones(size, dtype=np.float32))

    n_vocab = len(tokens)
    tensor("token_embd.weight", n_vocab, n_embd)
    ones("output_norm.weight", n_embd)
    tensor("output.weight", n_vocab, n_embd)
    for i in range(layers):
        ones(f"blk.{i}.attn_norm.weight", n_embd)
        tensor(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        tensor(f"blk.{i}.attn_k.weight", n_kv_head * head_dim, n_embd)
        tensor(f"blk.{i}.attn_v.weight", n_kv_head * head_dim, n_embd)
        tensor(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        ones(f"blk.{i}.ffn_norm.weight", n_embd)
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
