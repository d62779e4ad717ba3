"""The fit reads a GGUF's shape from its header alone, and remembers it while the file is
unchanged: the same values `gguf.GGUFReader` gives, without decoding the tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bigvocab import full_parse, write_big_vocab
from tinymodel import write_tiny_llama

from sparktop.catalog import gguf_header, gguf_meta, shape_cache
from sparktop.catalog.gguf_header import GgufFormatError, read_kv
from sparktop.catalog.gguf_meta import GgufError, read_shape, shape_from_values, wanted

pytest.importorskip("gguf")


def fresh_read(path: Path) -> gguf_meta.GgufShape:
    """read_shape as a new process would run it (nothing remembered in memory)."""
    gguf_meta._read.cache_clear()
    return read_shape(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny llama, and tokenizers of 5000 tokens and merges with strings a skip could get
    wrong, in both byte orders (small enough for the full parse to compare against)."""
    root = tmp_path_factory.mktemp("gguf")
    return {
        "tiny": write_tiny_llama(root / "tiny.gguf"),
        "vocab": write_big_vocab(root / "vocab.gguf", tokens=5000, merges=5000, tricky=True),
        "vocab-be": write_big_vocab(
            root / "vocab-be.gguf", tokens=5000, merges=5000, tricky=True, big_endian=True
        ),
    }


@pytest.mark.parametrize("name", ["tiny", "vocab", "vocab-be"])
def test_header_values_are_the_full_parses(models: dict[str, Path], name: str):
    old = full_parse(models[name])
    assert read_kv(models[name], lambda key: True) == old
    gguf_header._short_strings.cache_clear()
    assert read_kv(models[name], wanted) == {k: v for k, v in old.items() if wanted(k)}
    # the little-endian tokenizer was stepped over by the expression, not one by one
    assert gguf_header._short_strings.cache_info().misses == (name == "vocab")
    assert fresh_read(models[name]) == shape_from_values(name, old)


def test_big_vocabulary_shape_is_read_past_the_tokenizer(tmp_path: Path):
    """Qwen's tokenizer size, the model's keys after it, a KV head count per layer."""
    path = write_big_vocab(tmp_path / "qwen.gguf", tricky=True)
    shape = fresh_read(path)
    assert (shape.architecture, shape.layers, shape.context_length) == ("qwen2", 28, 32768)
    assert shape.kv_heads_per_layer == (0, 4) * 14
    assert (shape.key_length, shape.value_length, shape.rope_dim) == (128, 128, 128)
    assert shape.kv_elements_per_token() == 14 * 4 * 256


def test_shape_is_remembered_while_the_file_is_unchanged(models: dict[str, Path], tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(models["vocab"].read_bytes())
    shape = fresh_read(path)
    record = json.loads(shape_cache.cache_file().read_text())["files"][str(path)]
    assert record["size"] == path.stat().st_size
    # Same size and mtime: the next run takes the shape from the cache, not the file.
    st = path.stat()
    path.write_bytes(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fresh_read(path) == shape
    # A changed file is read again.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(GgufError, match="not a readable GGUF file"):
        fresh_read(path)


def test_a_damaged_cache_is_read_past_and_rewritten(models: dict[str, Path]):
    shape_cache.cache_file().parent.mkdir(parents=True, exist_ok=True)
    shape_cache.cache_file().write_text("{not json")
    assert fresh_read(models["tiny"]).architecture == "llama"
    files = json.loads(shape_cache.cache_file().read_text())["files"]
    assert list(files) == [str(models["tiny"])]


def test_files_that_are_no_gguf_say_so(models: dict[str, Path], tmp_path: Path):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    text = tmp_path / "text.gguf"
    text.write_text("not a model\n" * 10)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(models["vocab"].read_bytes()[:20000])  # inside the token list
    for path, why in ((empty, "no GGUF magic"), (text, "no GGUF magic"), (cut, "ends inside")):
        with pytest.raises(GgufError, match=f"{path}: not a readable GGUF file.*{why}"):
            fresh_read(path)
    with pytest.raises(GgufFormatError):
        read_kv(cut, lambda key: False)
    with pytest.raises(GgufError, match="No such file"):
        fresh_read(tmp_path / "missing.gguf")
