"""Benchmarks as the user reads them, in both faces, against a real llama-server: the live
log (each repetition's own figures on its line, the depths a sweep skipped), the kept runs
(the same fields from the TUI and the CLI, noisy runs marked), `sparktop results` and compare.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from conftest import free_port, make_app, run_cli, tiny_entry, write_user_catalog
from test_tui_servers import names, select, wait_until

pytestmark = pytest.mark.slow

CONTEXT = 1024
REP = re.compile(
    r"rep (\d)/3: TTFT (\d+) ms, prefill ([\d.]+) t/s, decode ([\d.]+) t/s(?: \(server ([\d.]+)\))?"
)


@pytest.fixture
def benchy(llama_server, tiny_gguf, isolated_dirs):
    port = free_port()
    entry = tiny_entry("benchy", tiny_gguf, port, args=["--parallel", "1", "--jinja"])
    entry["serve"]["context"] = CONTEXT
    entry["quant"] = "F32"
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "benchy", timeout=120).returncode == 0
    yield port
    run_cli("stop", "benchy", timeout=60)


def kept_detail(isolated_dirs, run_id: int) -> dict:
    with sqlite3.connect(isolated_dirs["data"] / "bench.sqlite3") as db:
        row = db.execute("SELECT detail FROM runs WHERE id = ?", (run_id,)).fetchone()
    return json.loads(row[0])


def run_id_of(text: str) -> int:
    return int(re.search(r"kept as run (\d+)", text).group(1))


def assert_reps_carry_their_own_figures(log: str, samples: list[dict]) -> None:
    """Three `rep N/3` lines, in order, each with the figures of repetition N."""
    reps = [m for line in log.splitlines() if (m := REP.search(line))]
    assert [int(m.group(1)) for m in reps] == [1, 2, 3], log
    for match, sample in zip(reps, samples, strict=True):
        assert int(match.group(2)) == round(sample["ttft_s"] * 1000)
        assert float(match.group(3)) == round(sample["prefill_tps"], 1)
        assert float(match.group(4)) == round(sample["decode_tps"], 1)
    assert "warm-up: TTFT" in log


def test_cli_bench_prints_each_repetition_with_its_own_figures(benchy, isolated_dirs):
    result = run_cli("bench", "benchy", "--prompt", "32", "--gen", "16", "--reps", "3",
                     timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = kept_detail(isolated_dirs, run_id_of(result.stdout))["api"]["samples"]
    assert_reps_carry_their_own_figures(result.stdout, samples)


def test_cli_depth_sweep_says_which_depths_it_skipped_and_why(benchy, isolated_dirs):
    result = run_cli("bench", "benchy", "--prompt", "32", "--gen", "16", "--reps", "1",
                     "--depths", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"depth +0: prefill", out), out
    for depth in (4096, 16384, 32768, 65536, 131072):
        assert f"skipped depth {depth}: context {CONTEXT} too small" in out, out
    detail = kept_detail(isolated_dirs, run_id_of(out))
    assert [d["depth"] for d in detail["depth_sweep"]] == [0]
    assert detail["depth_skipped"] == [4096, 16384, 32768, 65536, 131072]


async def test_tui_log_shows_own_figures_per_repetition_and_skipped_depths(benchy, isolated_dirs):
    from sparktop.ui.screens.bench import BenchScreen

    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: names(app).get("benchy") == "ready")
        select(app, "benchy")
        app.main.bench_lengths = (32, 16, 3)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BenchScreen))
        screen = app.screen

        def log() -> str:
            return "\n".join(screen.query_one("#bench-log").lines)

        await wait_until(pilot, lambda: not screen.running and "kept as run" in log(), 120)
        samples = kept_detail(isolated_dirs, run_id_of(log()))["api"]["samples"]
        assert_reps_carry_their_own_figures(log(), samples)
        await pilot.press("d")
        await wait_until(pilot, lambda: not screen.running and "depth: done" in log(), 120)
        assert f"skipped depth 4096: context {CONTEXT} too small" in log(), log()
        assert re.search(r"depth +0: prefill", log()), log()
