"""CLI tables fit the width (COLUMNS, the terminal, else 80) as `sparktop status` does: the
least important columns are left out first and said so, free text wraps onto indented lines,
and no name, number or path is cut. At a wide width nothing is left out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port, run_cli, tiny_entry, write_user_catalog

LONG_NAME = "tiny-chat-model-with-a-rather-long-name"


def at(columns: int) -> dict[str, str]:
    return dict(os.environ, COLUMNS=str(columns))


def assert_fits(text: str, columns: int) -> None:
    wide = [line for line in text.splitlines() if len(line) > columns]
    assert not wide, f"wider than {columns}: {wide}"


@pytest.fixture
def catalog(tiny_gguf: Path, isolated_dirs: dict[str, Path]) -> int:
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry(LONG_NAME, tiny_gguf, port)])
    return port


def test_catalog_fits_80_columns_and_keeps_everything_at_200(catalog):
    narrow = run_cli("catalog", env=at(80))
    assert narrow.returncode == 0, narrow.stderr
    assert_fits(narrow.stdout, 80)
    assert LONG_NAME in narrow.stdout  # whole, never cut
    row = next(line for line in narrow.stdout.splitlines() if line.startswith(LONG_NAME))
    assert "KiB" in row and "… " not in row  # its size on disk, whole
    note = next(line for line in narrow.stdout.splitlines() if "left out" in line)
    assert note.startswith("  left out at 80 columns: ") and note.endswith("; --json has all")
    assert "QUANT" in note and "NEEDS" in note and "DISK" not in note
    # the fit text wraps onto indented lines, every word kept
    wide_lines = run_cli("catalog", env=at(300)).stdout.splitlines()
    column = wide_lines[0].index("FIT")
    words = " ".join(narrow.stdout.split())
    for line in wide_lines[1:]:
        assert line[column:] in words
    wide = run_cli("catalog", env=at(200))
    assert wide.returncode == 0, wide.stderr
    assert wide.stdout.splitlines()[0].split() == ["NAME", "ENGINE", "QUANT", "DISK", "NEEDS",
                                                   "FIT"]  # fmt: skip
    assert "left out" not in wide.stdout
    assert all("available" in line for line in wide.stdout.splitlines()[1:])


@contextmanager
def serving(name: str = LONG_NAME) -> Iterator[None]:
    """The catalog's tiny model served by the real llama-server; stopped after."""
    served = run_cli("serve", name, timeout=90)
    assert served.returncode == 0, served.stdout + served.stderr
    try:
        yield
    finally:
        assert run_cli("stop", name, timeout=60).returncode == 0


def bench(columns: int = 200) -> str:
    result = run_cli("bench", LONG_NAME, "--prompt", "8", "--gen", "4", "--reps", "1",
                     env=at(columns), timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_results_fit_80_columns(catalog, llama_server):
    with serving():
        bench()
        bench()
    narrow = run_cli("results", env=at(80))
    assert narrow.returncode == 0, narrow.stderr
    assert_fits(narrow.stdout, 80)
    lines = narrow.stdout.splitlines()
    assert lines[0].split()[:2] == ["RUN", "MODEL"] or "MODEL" in lines[0]
    assert "PP t/s" in lines[0] and "TG t/s" in lines[0]
    assert sum(LONG_NAME in line for line in lines) == 2  # each run's model, whole
    note = next(line for line in lines if "left out" in line)
    assert note.startswith("  left out at 80 columns: ") and "REPS" in note
    wide = run_cli("results", env=at(200))
    assert wide.stdout.splitlines()[0].split()[:4] == ["RUN", "DATE", "MODEL", "KIND"]
    assert "left out" not in wide.stdout and "REPS" in wide.stdout


def test_compare_fits_80_columns_with_long_facts_below(catalog, llama_server):
    with serving():
        bench()
        bench()
    narrow = run_cli("results", "--compare", "1", "2", env=at(80))
    assert narrow.returncode == 0, narrow.stderr
    assert_fits(narrow.stdout, 80)
    lines = narrow.stdout.splitlines()
    # the model's name is too long for a column: each run's on a line of its own, whole
    model = lines.index("Model")
    assert lines[model + 1 : model + 3] == [f"  A: {LONG_NAME}", f"  B: {LONG_NAME}"]
    assert any(line.startswith("Decode ") and "%" in line for line in lines)  # deltas stay
    wide = run_cli("results", "--compare", "1", "2", env=at(200))
    assert "Model" not in wide.stdout.splitlines() and "left out" not in wide.stdout
    assert any(line.startswith("Model") and LONG_NAME in line for line in wide.stdout.splitlines())


def test_test_report_fits_80_columns(catalog, llama_server):
    with serving():
        narrow = run_cli("test", LONG_NAME, env=at(80), timeout=120)
        wide = run_cli("test", LONG_NAME, env=at(400), timeout=120)  # a reply is 300 at most
    assert narrow.returncode == wide.returncode == 1  # random weights babble: coherence fails
    assert_fits(narrow.stdout, 80)
    lines = narrow.stdout.splitlines()
    # the served name is too long to follow its check: it goes on a line of its own, whole
    models = next(i for i, line in enumerate(lines) if "/v1/models" in line)
    assert lines[models + 1].strip() == f"lists {LONG_NAME}"
    assert any(line.startswith("  FAIL  coherence") for line in lines)
    reply = next(i for i, line in enumerate(lines) if line.startswith("  reply: "))
    assert lines[reply + 1].startswith("         ")  # the reply goes on, indented
    wide_lines = wide.stdout.splitlines()
    assert any(line.endswith(f"lists {LONG_NAME}") and "PASS" in line for line in wide_lines)
    reply = next(i for i, line in enumerate(wide_lines) if line.startswith("  reply: "))
    assert wide_lines[reply + 1].startswith("  server timings: ")  # the reply on one line


def test_bench_report_fits_80_columns(catalog, llama_server):
    with serving():
        narrow = bench(80)
        wide = bench(400)
    assert_fits(narrow, 80)
    lines = narrow.splitlines()
    # the title names the model and its URL whole, then goes on under an indent
    title = next(i for i, line in enumerate(lines) if line.startswith(LONG_NAME))
    assert lines[title + 1].startswith("    ") and "repetitions" in lines[title + 1]
    assert "http://127.0.0.1:" in lines[title] or "http://127.0.0.1:" in lines[title + 1]
    sources = next(i for i, line in enumerate(lines) if line.startswith("  sources: "))
    assert lines[sources + 1].startswith("      ")
    assert "kept as run 1 (sparktop results)" in narrow
    wide_lines = wide.splitlines()
    assert any(line.startswith(LONG_NAME) and line.endswith("1 repetitions") for line in wide_lines)
    assert any(line.startswith("  sources: ") and line.endswith("in each reply")
               for line in wide_lines)  # fmt: skip
