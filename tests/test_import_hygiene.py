"""The core never imports Textual (DESIGN.md §3): only sparktop.ui does.

Each check runs in a fresh interpreter where a meta-path finder refuses `textual` and
`textual.*` and notes every attempt, so a module that catches the ImportError and carries on
without it is caught too. The import contracts in pyproject.toml say the same statically.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import machine_env

import sparktop

NOT_CORE = ("sparktop.cli", "sparktop.ui", "sparktop.main", "sparktop.__main__")
"""The two faces and the launcher above them (`__main__` would also run the program)."""

BLOCK_TEXTUAL = """
import importlib.abc
import json
import sys


class BlockTextual(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.asked = []

    def find_spec(self, name, path=None, target=None):
        if name == "textual" or name.startswith("textual."):
            self.asked.append(name)
            raise ImportError(f"{name} is blocked: the core must not import Textual")
        return None


BLOCKER = BlockTextual()
sys.meta_path.insert(0, BLOCKER)


def textual_loaded():
    return sorted(name for name in sys.modules if name.split(".")[0] == "textual")
"""

IMPORT_EACH = (
    BLOCK_TEXTUAL
    + """
import importlib

results = {}
for name in json.loads(sys.stdin.read()):
    asked_before = len(BLOCKER.asked)
    try:
        importlib.import_module(name)
        error = None
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    results[name] = {
        "error": error,
        "asked": BLOCKER.asked[asked_before:],
        "loaded": textual_loaded(),
    }
print(json.dumps(results))
"""
)

RUN_COMMAND = (
    BLOCK_TEXTUAL
    + """
from sparktop.main import run  # the launcher's work, without its quick exit

report, sys.argv = sys.argv[1], ["sparktop", *sys.argv[2:]]
try:
    code = run()
except SystemExit as exc:
    code = exc.code
with open(report, "w") as out:
    json.dump({"code": code, "asked": BLOCKER.asked, "loaded": textual_loaded()}, out)
"""
)


def core_modules() -> list[str]:
    """Every module under tui/sparktop but the faces, found on disk (nothing is imported)."""
    found = ["sparktop"]

    def walk(paths: list[str], prefix: str) -> None:
        for info in pkgutil.iter_modules(paths, prefix):
            if info.name in NOT_CORE:
                continue
            found.append(info.name)
            if info.ispkg:
                short = info.name.rsplit(".", 1)[-1]
                walk([str(Path(info.module_finder.path) / short)], info.name + ".")  # type: ignore[union-attr]

    walk(list(sparktop.__path__), "sparktop.")
    return sorted(found)


CORE = core_modules()


@pytest.fixture(scope="module")
def imported() -> dict[str, dict]:
    """Every core module imported, one after another, in one interpreter without Textual."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH],
        input=json.dumps(CORE),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_walk_finds_the_core_and_only_the_core():
    assert {"sparktop.config", "sparktop.probes.system", "sparktop.servers.supervisor"} <= set(CORE)
    assert not [name for name in CORE if name.startswith(NOT_CORE)]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_without_textual(imported: dict[str, dict], module: str):
    outcome = imported[module]
    assert outcome["error"] is None
    assert outcome["asked"] == [], f"{module} asked for Textual"
    assert outcome["loaded"] == []


def test_a_headless_verb_runs_without_textual(tmp_path: Path):
    """`sparktop status --json`, through the launcher and the CLI, as a script runs it."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-c", RUN_COMMAND, str(report), "status", "--json"],
        capture_output=True,
        text=True,
        env=machine_env("spark"),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(report.read_text())
    assert outcome == {"code": 0, "asked": [], "loaded": []}, result.stderr
    assert json.loads(result.stdout)["hostname"] == "spark-01"
