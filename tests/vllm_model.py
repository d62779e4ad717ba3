"""A tiny Llama in Hugging Face format for the real-vLLM tests, built with no download.

The vLLM venv's own `transformers` and `tokenizers` write it (in a subprocess, so the test
process needs neither): a small LlamaConfig with random weights and a byte-level BPE
tokenizer trained on a few sentences, with a chat template so /v1/chat/completions works.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-vllm"
VENV_PYTHON = VENV / "bin" / "python"


def vllm_installed() -> bool:
    """Whether tests/tools/install_vllm.py has put vLLM into .venv-vllm."""
    return VENV_PYTHON.is_file() and any(VENV.glob("lib/python*/site-packages/vllm/__init__.py"))


def require_vllm() -> None:
    """Skip the calling test module when vLLM is not installed; fail instead when
    SPARKTOP_REQUIRE_VLLM=1 (CI, where it must be)."""
    if vllm_installed():
        return
    import pytest

    why = "vLLM not installed (run tests/tools/install_vllm.py to make .venv-vllm)"
    if os.environ.get("SPARKTOP_REQUIRE_VLLM") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)


BUILD = r"""
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

out = Path(sys.argv[1])
corpus = [
    "The capital of France is Paris.",
    "Two plus two is four. Count to ten: one two three four five six seven eight nine ten.",
    "Hello! How can I help you today? Reply with one word.",
] * 20
bpe = Tokenizer(models.BPE(unk_token=None))
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = decoders.ByteLevel()
bpe.train_from_iterator(
    corpus,
    trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ),
)
tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
tokenizer.chat_template = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
config = LlamaConfig(
    vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
    num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=64,
    max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
    eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
)
torch.manual_seed(0)
model = LlamaForCausalLM(config).to(torch.bfloat16)
model.save_pretrained(out)
tokenizer.save_pretrained(out)
print(out)
"""


def write_tiny_hf_llama(out: Path) -> Path:
    """Write the tiny model into `out` (a directory) with .venv-vllm's Python; return `out`."""
    if (out / "config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(VENV_PYTHON), "-c", BUILD, str(out)], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the tiny HF model failed:\n{done.stderr[-3000:]}")
    return out
