"""A catalog with several mistakes: every one reported in one pass, with file:line and the
close spelling; unknown model names on the command line get the same 'did you mean'."""

from __future__ import annotations

from conftest import run_cli

from sparktop.catalog.loader import load_catalog

MISTAKES = """\
models:
  - name: mine
    engine: llama.cpp
    local_dir: /tmp/nowhere
    szie_gb: 12
    description: three mistakes in one entry
    serve:
      served_name: mine
      context: lots
      cache_type: q8_0
      prot: 30010
  - name: fine
    engine: llama.cpp
    serve: {port: 30011}
  - name: other
    engine: llamacpp
    serve: {port: 30012}
"""


def write(isolated_dirs, text: str):
    path = isolated_dirs["config"] / "catalog" / "mistakes.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_every_mistake_is_reported_with_file_line_and_the_close_spelling(isolated_dirs):
    path = write(isolated_dirs, MISTAKES)
    catalog = load_catalog()
    assert catalog.errors == [
        f"{path}:5: model mine: unknown key 'szie_gb' (did you mean size_gb?)",
        f"{path}:9: model mine: serve.context must be a whole number, got 'lots'",
        f"{path}:11: model mine: unknown key 'serve.prot' (did you mean port?)",
        f"{path}:16: model other: engine must be one of llama.cpp, vllm, sglang, command, "
        "got 'llamacpp' (did you mean llama.cpp?)",
    ]  # the misspelt port is not reported a second time as 'serve.port is required'
    assert "fine" in catalog.entries
    assert "mine" not in catalog.entries and "other" not in catalog.entries
    assert len(catalog.invalid["mine"]) == 3


def test_the_cli_prints_each_mistake_on_its_own_line_and_fails(isolated_dirs):
    path = write(isolated_dirs, MISTAKES)
    listed = run_cli("catalog")
    assert listed.returncode == 1
    lines = listed.stderr.splitlines()
    assert len(lines) == 4 and all(line.startswith(f"sparktop: error: {path}:") for line in lines)
    assert "fine" in listed.stdout

    served = run_cli("serve", "mine")
    assert served.returncode == 2
    last = served.stderr.splitlines()[-1]
    assert last.startswith("sparktop: error: catalog entry 'mine' has errors: ")
    assert f"{path}:5:" in last and "(and 2 more)" in last


def test_unknown_model_name_suggests_the_close_ones():
    result = run_cli("serve", "qwen3-codr")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unknown model 'qwen3-codr' (did you mean qwen3-coder-" in result.stderr

    far = run_cli("export", "opencode", "zzzz")
    assert far.returncode == 2
    assert "unknown model 'zzzz' (`sparktop catalog` lists the models)" in far.stderr
