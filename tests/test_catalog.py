"""The model catalog: shipped models, user overrides, errors with file:line, the fit verdict."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, write_user_catalog

from sparktop.catalog.fit import GIB, check_fit, estimate_need
from sparktop.catalog.loader import load_catalog
from sparktop.servers.coherence import check_coherence

SHIPPED = {
    "qwen3-coder-next-q4", "qwen3-coder-next-fp8", "minimax-m2.1-q2", "qwen3-coder-30b-a3b-q4",
    "gpt-oss-20b", "gpt-oss-120b", "glm-4.7-flash-q8", "nemotron-3-nano-30b-a3b-q4",
    "deepseek-v3.1-tq1", "qwen3-coder-480b-iq1", "llama-4-scout-q4", "qwen3-32b-nvfp4",
}  # fmt: skip


def test_shipped_catalog_has_the_models_people_run():
    catalog = load_catalog()
    assert not catalog.errors
    assert set(catalog.entries) >= SHIPPED
    coder = catalog.get("qwen3-coder-next-q4")
    assert coder.engine == "llama.cpp" and coder.serve.port == 30000
    assert coder.serve.proxy.port == 31000 and coder.serve.exclusive == "big"
    assert "--jinja" in coder.serve.args and coder.serve.context == 131072
    assert catalog.get("qwen3-coder-next-fp8").engine == "vllm"
    assert catalog.get("qwen3-32b-nvfp4").engine == "sglang"
    speed = catalog.get("gpt-oss-120b").speeds[0]
    assert "GB10" in speed.hardware and speed.gen_tps and "llama.cpp" in speed.source


def test_user_entry_overrides_one_field_and_adds_new_ones(isolated_dirs, tmp_path):
    write_user_catalog(
        isolated_dirs["config"],
        [
            {"name": "gpt-oss-20b", "local_dir": str(tmp_path / "oss")},
            {"name": "mine", "engine": "command",
             "serve": {"port": 9000, "argv": ["my-server", "--port", "{port}"]}},
        ],
    )  # fmt: skip
    catalog = load_catalog()
    assert not catalog.errors
    oss = catalog.get("gpt-oss-20b")
    assert oss.local_dir == tmp_path / "oss"
    assert oss.serve.port == 30001 and oss.engine == "llama.cpp"  # the rest kept
    assert catalog.get("mine").serve.argv == ("my-server", "--port", "{port}")


BAD = """\
models:
  - name: good-one
    engine: llama.cpp
    serve: {port: 30010}
  - name: shell-string
    engine: llama.cpp
    serve:
      port: 30011
      args: "-ngl 99 --jinja"
  - name: bad-port
    engine: vllm
    serve:
      port: 99999
  - name: bad-engine
    engine: ollama
    serve: {port: 1}
  - name: typo
    engine: llama.cpp
    serve: {port: 30012, contxt: 4096}
"""


def test_invalid_entries_each_get_one_error_with_file_and_line(isolated_dirs):
    path = isolated_dirs["config"] / "catalog" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(BAD)
    catalog = load_catalog()
    assert "good-one" in catalog.entries
    assert len(catalog.errors) == 4
    joined = "\n".join(catalog.errors)
    assert f"{path}:9: model shell-string: serve.args must be a list" in joined
    assert f"{path}:13: model bad-port: serve.port must be between 1 and 65535" in joined
    assert f"{path}:15: model bad-engine: engine must be one of" in joined
    assert f"{path}:19: model typo: unknown key 'serve.contxt'" in joined

    result = run_cli("catalog")
    assert result.returncode == 1
    assert result.stderr.count("sparktop: error:") == 4
    assert "good-one" in result.stdout and "qwen3-coder-next-q4" in result.stdout


def test_yaml_syntax_error_names_file_and_line(isolated_dirs):
    path = isolated_dirs["config"] / "catalog" / "broken.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("models:\n  - name: x\n    serve: {port: 1\n")
    catalog = load_catalog()
    assert len(catalog.errors) == 1 and catalog.errors[0].startswith(f"{path}:")
    assert set(catalog.entries) >= SHIPPED


def test_kv_cache_comes_from_the_gguf_metadata(isolated_dirs, tmp_path):
    from tinymodel import write_tiny_llama

    model = write_tiny_llama(tmp_path / "m" / "m.gguf", layers=4, n_embd=128, n_head=8, n_kv_head=2)
    write_user_catalog(
        isolated_dirs["config"],
        [{"name": "m", "engine": "llama.cpp", "local_dir": str(model.parent), "files": [model.name],
          "serve": {"port": 1234, "context": 8192, "args": ["-ctk", "q8_0", "-ctv", "q8_0"]}}],
    )  # fmt: skip
    need = estimate_need(load_catalog().get("m"), 128 * GIB)
    head_dim = 128 // 8
    expected = 4 * 2 * (head_dim + head_dim) * 8192 * 34 / 32
    assert need.kv_bytes == int(expected)
    assert "GGUF metadata" in need.kv_source and "q8_0" in need.kv_source
    assert need.weights_bytes == model.stat().st_size


def test_fit_verdicts_count_memory_freed_by_stopping():
    catalog = load_catalog()
    coder = catalog.get("qwen3-coder-next-q4")
    need = estimate_need(coder, 128 * GIB).total_bytes
    assert 45 * GIB < need < 60 * GIB
    fits = check_fit([coder], available_bytes=need + 10 * GIB, pool_total_bytes=128 * GIB)
    tight = check_fit([coder], available_bytes=need + GIB, pool_total_bytes=128 * GIB)
    no = check_fit([coder], available_bytes=need - GIB, pool_total_bytes=128 * GIB)
    freed = check_fit(
        [coder], available_bytes=need - GIB, pool_total_bytes=128 * GIB, freed_bytes=20 * GIB
    )
    assert (fits.verdict, tight.verdict, no.verdict, freed.verdict) == (
        "fits", "tight", "does not fit", "fits"
    )  # fmt: skip
    assert "needs" in no.summary() and "available" in no.summary()
    together = check_fit(
        [coder, catalog.get("gpt-oss-120b")], available_bytes=110 * GIB, pool_total_bytes=128 * GIB
    )
    assert together.verdict == "does not fit"


def test_catalog_json_reports_fit_for_a_set_of_models():
    result = run_cli("catalog", "--json", "gpt-oss-20b", "qwen3-coder-30b-a3b-q4")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [m["name"] for m in doc["models"]] == ["gpt-oss-20b", "qwen3-coder-30b-a3b-q4"]
    for model in doc["models"]:
        assert model["fit"]["verdict"] in ("fits", "tight", "does not fit")
        assert model["fit"]["needs"][0]["kv_cache_bytes"] > 0
        assert model["disk"]["files"] == 0
    assert doc["together"]["need_bytes"] == sum(m["fit"]["need_bytes"] for m in doc["models"])


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris.",
        "Paris.",
        "Sure. Here is a function:\n\ndef add(a, b):\n    return a + b\n\nIt adds two numbers.",
        "Paris is the capital of France. It is well known for the Eiffel Tower, the Louvre and "
        "its long history as a centre of art, fashion and science.",
        "巴黎是法国的首都，以埃菲尔铁塔闻名。",
    ],
)
def test_ordinary_text_passes_the_coherence_check(text):
    assert check_coherence(text).ok, check_coherence(text).problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("the the the the the the the the the the the the the", "repetition loop"),
        ("I think that I think that I think that I think that I think that", "repetition loop"),
        ("Answer:\n" + "1. The answer is\n" * 12, "repetition loop"),
        ("xq zt bvvk qqwrt plmnb zzxc vbnm qwert asdf ghjk lkjh", "gibberish"),
        ("\ufffd+[\ufffd you\x0bo&\ufffd` arer7\ufffd\x0e\ufffd4\ufffd\x14 R\ufffd", "gibberish"),
        ("", "empty"),
        ("5-3", "no words"),
    ],
)
def test_gibberish_and_loops_are_flagged(text, problem):
    result = check_coherence(text)
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems


def _shards(folder, count: int, size: int = 4096) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"Q4/Tiny-Q4-{n:05d}-of-{count:05d}.gguf" for n in range(1, count + 1)]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"GGUF" + bytes(size - 4))
    return names


def _disk(name: str) -> dict:
    result = run_cli("catalog", "--json", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["models"][0]["disk"]


def test_all_files_here_are_complete_whatever_size_gb_says(isolated_dirs, tmp_path):
    """size_gb is an estimate for before the files are on disk: once every file of the entry
    is here and finished (sparktop verified it, or `hf download` finished it), it is complete
    though far smaller; one shard of two, or an unfinished file, is still partial."""
    from sparktop.downloads.verify import write_stamp

    ours, theirs, half = tmp_path / "ours", tmp_path / "theirs", tmp_path / "half"
    for name in _shards(ours, 2):
        write_stamp(ours, name, None)  # downloaded and verified by sparktop
    for name in _shards(theirs, 1):  # finished by `hf download --local-dir`
        meta = theirs / ".cache/huggingface/download" / (name + ".metadata")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(f"{'0' * 40}\netag\n{(theirs / name).stat().st_mtime + 1}\n")
    write_stamp(half, _shards(half, 2)[0], None)
    (half / _shards(half, 2)[1]).unlink()  # one shard of two
    write_user_catalog(
        isolated_dirs["config"],
        [{"name": name, "engine": "llama.cpp", "local_dir": str(where), "include": ["Q4/*"],
          "size_gb": 30.0, "serve": {"port": 1}}
         for name, where in (("ours", ours), ("theirs", theirs), ("half", half))],
    )  # fmt: skip
    assert [(_disk(n)["state"], _disk(n)["complete"]) for n in ("ours", "theirs", "half")] == [
        ("verified", True), ("complete", True), ("partial", False),
    ]  # fmt: skip
    table = run_cli("catalog").stdout  # the DISK column: ✓ verified, … partial
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "✓ 8.0 KiB" in rows["ours"] and "… 4.0 KiB" in rows["half"], table
    assert "…" not in rows["theirs"] and "4.0 KiB" in rows["theirs"], table
