"""Benchmarks as the user reads them, in both faces, against a real llama-server: the live
log (each repetition's own figures on its line, the depths a sweep skipped), the kept runs
(the same fields from the TUI and the CLI, noisy runs marked), `sparktop results` and compare.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest
from conftest import free_port, make_app, run_cli, tiny_entry, write_user_catalog
from test_tui_servers import wait_until

from sparktop.actions.bench import BenchOptions, BenchOutcome, BenchTarget
from sparktop.bench.api import ApiResult, Sample
from sparktop.bench.noise import noise_note
from sparktop.bench.store import SCHEMA, ResultStore

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


async def bench_screen(pilot, app, lengths: tuple[int, int, int]):
    """`b` on benchy with these prompt/generated tokens and repetitions; its first run done."""
    from test_bench import open_bench_screen

    app.main.bench_lengths = lengths
    return await open_bench_screen(pilot, app)


async def compare_in_the_tui(pilot, app, screen) -> None:
    """`m` on the newest run (A), `m` on the one before (B): the compare dialog in plain
    words, B against A in that order, the hardware on lines of its own."""
    from sparktop.ui.screens.dialogs import TextScreen

    history = screen.query_one("#bench-history")
    ids = [int(history.get_row_at(i)[0]) for i in (0, 1)]
    assert ids[0] > ids[1]  # newest first
    history.focus()
    for row in (0, 1):
        history.move_cursor(row=row)
        await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
    assert app.screen.title_text == f"run {ids[0]} (A) against run {ids[1]} (B)"
    lines = app.screen.text.splitlines()
    assert lines[0].split() == ["A:", "run", str(ids[0]), "B:", "run", str(ids[1]), "B",
                                "against", "A"]  # fmt: skip
    assert any(line.startswith("Time to first token") for line in lines)
    assert "ttft_s" not in app.screen.text and "{" not in app.screen.text
    at = lines.index("Hardware")
    assert lines[at + 1].startswith("  A: ") and lines[at + 2].startswith("  B: ")
    await pilot.press("escape")


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


@pytest.mark.slow
def test_cli_bench_prints_each_repetition_with_its_own_figures(benchy, isolated_dirs):
    result = run_cli("bench", "benchy", "--prompt", "32", "--gen", "16", "--reps", "3",
                     timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    samples = kept_detail(isolated_dirs, run_id_of(result.stdout))["api"]["samples"]
    assert_reps_carry_their_own_figures(result.stdout, samples)


@pytest.mark.slow
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


@pytest.mark.slow
async def test_tui_log_shows_own_figures_per_repetition_and_skipped_depths(benchy, isolated_dirs):
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await bench_screen(pilot, app, (32, 16, 3))

        def log() -> str:
            return "\n".join(screen.query_one("#bench-log").lines)

        samples = kept_detail(isolated_dirs, run_id_of(log()))["api"]["samples"]
        assert_reps_carry_their_own_figures(log(), samples)
        await pilot.press("d")
        await wait_until(pilot, lambda: not screen.running and "depth: done" in log(), 120)
        assert f"skipped depth 4096: context {CONTEXT} too small" in log(), log()
        assert re.search(r"depth +0: prefill", log()), log()


# -- noisy runs ------------------------------------------------------------------------


def fabricated(decode_s: tuple[float, ...]) -> ApiResult:
    """A run of 64-token prompts and 17 generated tokens whose decode took `decode_s`."""
    result = ApiResult("http://127.0.0.1:1", "fab", 64, 17, True)
    result.samples += [Sample(64, 17, 0.05, d, 0.05 + d) for d in decode_s]
    return result


STEADY = (0.100, 0.102, 0.098)  # decode 160, 157, 163 t/s
NOISY = (0.100, 0.100, 0.200)  # decode 160, 160, 80 t/s: stdev 46 = 29 % of the median


def test_the_noisy_rule_is_a_stdev_above_a_fifth_of_the_median():
    assert noise_note([("decode", 100.0, 20.0)]) is None
    assert noise_note([("decode", 100.0, 21.0), ("TTFT", 0.05, 0.001)]) == "decode ±21%"
    assert noise_note([("decode", 100.0, 20.2)]) == "decode ±20.2%"
    assert noise_note([("decode", None, None), ("prefill", 0.0, 5.0)]) is None
    assert fabricated(STEADY).noise() is None
    assert fabricated(NOISY).noise() == "decode ±29%"
    assert fabricated(NOISY[:1]).noise() is None  # one repetition has no spread


def test_a_noisy_run_is_kept_and_reported_with_the_mark(tmp_path):
    store = ResultStore(tmp_path / "bench.sqlite3")
    noisy = store.add_api(fabricated(NOISY), engine="llama.cpp")
    steady = store.add_api(fabricated(STEADY), engine="llama.cpp")
    assert store.get(noisy)["noisy"] == "decode ±29%"
    assert store.get(steady)["noisy"] is None
    assert {r["id"]: r["noisy"] for r in store.history()} == {noisy: "decode ±29%", steady: None}
    outcome = BenchOutcome(BenchTarget("http://127.0.0.1:1", "fab"), BenchOptions(reps=3),
                           result=fabricated(NOISY), run_id=noisy)  # fmt: skip
    assert outcome.noisy == "decode ±29%"
    assert "NOISY (decode ±29%)" in outcome.summary_line()
    report = "\n".join(outcome.lines())
    assert "NOISY: decode ±29%: standard deviation above 20 % of the median" in report
    assert f"kept as run {noisy}, marked noisy" in report
    quiet = BenchOutcome(outcome.target, outcome.options, result=fabricated(STEADY))
    assert "NOISY" not in quiet.summary_line() + "\n".join(quiet.lines())


def test_a_store_kept_before_the_noisy_mark_gains_the_field(tmp_path):
    path = tmp_path / "bench.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA.replace(",\n    noisy TEXT", ""))
        db.execute("INSERT INTO runs (time, model, kind) VALUES (1, 'old', 'api')")
    store = ResultStore(path)
    assert store.history()[0]["noisy"] is None
    run = store.add_api(fabricated(NOISY), engine=None)
    assert store.get(run)["noisy"] == "decode ±29%"


def test_results_lists_noisy_runs_as_noisy(isolated_dirs):
    store = ResultStore()
    noisy = store.add_api(fabricated(NOISY), engine="llama.cpp")
    steady = store.add_api(fabricated(STEADY), engine="llama.cpp")
    listing = run_cli("results", env=dict(os.environ, COLUMNS="200"))  # every column
    assert listing.returncode == 0, listing.stderr
    lines = {int(line.split()[0]): line for line in listing.stdout.splitlines()
             if line.strip()[:1].isdigit()}  # fmt: skip
    assert "noisy" in lines[noisy] and "decode ±29%" in lines[noisy]
    assert "noisy" not in lines[steady]
    exported = json.loads(run_cli("results", "--export", "json").stdout)
    assert {r["id"]: r["noisy"] for r in exported} == {noisy: "decode ±29%", steady: None}


# -- the same kept fields from both faces ------------------------------------------------

KEPT = ("model", "quant", "engine", "serve_flags", "host", "hardware", "sparktop_version")
LENGTHS = ("prompt_tokens", "gen_tokens", "repetitions")


@pytest.mark.slow
async def test_runs_and_sweeps_from_the_tui_are_kept_like_the_clis(benchy, isolated_dirs):
    cli = run_cli("bench", "benchy", "--prompt", "32", "--gen", "16", "--reps", "2", "--depths",
                  "--quality", "--llama-bench", timeout=600)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await bench_screen(pilot, app, (32, 16, 2))
        for key, kind in (("d", "depth"), ("a", "quality"), ("l", "llama-bench")):
            await pilot.press(key)
            await wait_until(pilot, lambda k=kind: not screen.running and any(
                line.startswith(f"{k}: done") for line in screen.query_one("#bench-log").lines
            ), timeout=300)  # fmt: skip
        await compare_in_the_tui(pilot, app, screen)
        await pilot.press("escape")
    runs = json.loads(run_cli("results", "--export", "json").stdout)
    by_kind: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: r["id"]):
        assert "noisy" in run
        by_kind.setdefault(run["kind"], []).append(run)
    assert sorted(by_kind) == ["api", "depth", "llama-bench", "quality"]
    (cli_run, tui_run), sweeps = by_kind["api"], [by_kind[k][0] for k in SWEEP_KINDS]
    for key in KEPT:
        assert len({run[key] for run in [cli_run, tui_run, *sweeps]}) == 1, key
    assert tui_run["quant"] == "F32" and tui_run["serve_flags"] == "--parallel 1 --jinja"
    assert [tui_run[k] for k in LENGTHS] == [cli_run[k] for k in LENGTHS] == [32, 16, 2]
    depth, quality, llama = sweeps
    assert [depth[k] for k in LENGTHS] == [32, 16, 1]  # each depth is measured once
    assert [llama[k] for k in LENGTHS] == [32, 16, 2] and llama["decode_tps"] > 0
    assert [quality[k] for k in LENGTHS] == [None, None, None]
    by_cli = kept_detail(isolated_dirs, cli_run["id"])
    by_tui = {run["kind"]: kept_detail(isolated_dirs, run["id"]) for run in sweeps}
    skipped = [4096, 16384, 32768, 65536, 131072]
    assert by_tui["depth"]["depth_skipped"] == by_cli["depth_skipped"] == skipped
    assert [d["depth"] for d in by_tui["depth"]["depth_sweep"]] == [0]
    assert [d["depth"] for d in by_cli["depth_sweep"]] == [0]
    modes = [q["mode"] for q in by_cli["quality"]]
    assert [q["mode"] for q in by_tui["quality"]["quality"]] == modes and len(modes) >= 4
    tests = [row["test"] for row in by_cli["llama_bench"]]
    assert [row["test"] for row in by_tui["llama-bench"]["llama_bench"]] == tests
    assert tests == ["pp32", "tg16"]


SWEEP_KINDS = ("depth", "quality", "llama-bench")


# -- results and compare, as text ----------------------------------------------------------

SLOW = (0.200, 0.200, 0.200)  # decode 80 t/s


def test_results_lists_date_lengths_and_repetitions(isolated_dirs):
    ResultStore().add_api(fabricated(STEADY), engine="llama.cpp", quant="Q4_K_M")
    listing = run_cli("results", env=dict(os.environ, COLUMNS="200"))  # every column
    assert listing.returncode == 0, listing.stderr
    head, row = listing.stdout.splitlines()
    assert head.split() == ["RUN", "DATE", "MODEL", "KIND", "PROMPT", "GEN", "REPS", "PP", "t/s",
                            "TG", "t/s", "TTFT", "NOTE"]  # fmt: skip
    assert re.match(r"\s*1  \d{4}-\d\d-\d\d \d\d:\d\d  fab\s+api\s+64\s+17\s+3\s+1280\.0\s+160\.0"
                    r"\s+50 ms$", row), row  # fmt: skip
    empty = run_cli("results", "--model", "nothing")
    assert empty.stdout.startswith("no kept runs of model 'nothing'")


def test_compare_is_a_readable_table_of_b_against_a_in_the_order_given(isolated_dirs):
    store = ResultStore()
    fast = store.add_api(fabricated(STEADY), engine="llama.cpp", serve_flags="-c 4096")
    slow = store.add_api(fabricated(SLOW), engine="llama.cpp", serve_flags="-c 8192")
    result = run_cli("results", "--compare", str(slow), str(fast))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "{" not in text and "ttft_s" not in text and "decode_tps" not in text
    lines = text.splitlines()
    assert lines[0] == f"run {slow} (A) against run {fast} (B)"
    assert lines[2].split() == ["A:", "run", str(slow), "B:", "run", str(fast), "B", "against", "A"]
    rows = {line[:26].strip(): line[26:].split() for line in lines[3:] if line[:1] != " "}
    assert rows["Decode"] == ["80.0", "t/s", "160.0", "t/s", "+80.0", "t/s", "(+100.0", "%)"]
    assert rows["Time to first token"] == ["50", "ms", "50", "ms", "+0", "ms", "(+0.0", "%)"]
    assert rows["Prompt tokens"] == ["64", "64"] and rows["Repetitions"] == ["3", "3"]
    for label, a, b in (("Serve flags", "-c 8192", "-c 4096"), ("Noisy", "no", "no")):
        at = next(i for i, line in enumerate(lines) if line.startswith(label))
        assert lines[at + 1 : at + 3] == [f"  A: {a}", f"  B: {b}"]
    at = lines.index("Hardware")
    assert lines[at + 1].startswith("  A: ") and " · " in lines[at + 1]
    assert lines[at + 2].startswith("  B: ") and " · " in lines[at + 2]
    # the other order: B against A the other way round
    back = run_cli("results", "--compare", str(fast), str(slow)).stdout
    assert re.search(r"^Decode +160\.0 t/s +80\.0 t/s +-80\.0 t/s \(-50\.0 %\)$", back, re.M), back


def test_compare_as_json_holds_no_json_inside(isolated_dirs):
    store = ResultStore()
    fast = store.add_api(fabricated(STEADY), engine="llama.cpp")
    slow = store.add_api(fabricated(SLOW), engine="llama.cpp")
    result = run_cli("results", "--compare", str(fast), str(slow), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["a"]["id"] == fast and doc["b"]["id"] == slow
    assert doc["delta"]["decode_tps"]["abs"] == pytest.approx(-80.0)
    for run in (doc["a"], doc["b"]):
        assert isinstance(run["detail"], dict) and run["detail"]["samples"]
        assert not any(
            isinstance(v, str) and v.lstrip().startswith(("{", "[")) for v in run.values()
        )
    missing = run_cli("results", "--compare", str(fast), "99")
    assert missing.returncode == 1 and missing.stderr.strip() == "sparktop: error: no run 99"
    listed = json.loads(run_cli("results", "--json").stdout)
    assert [r["id"] for r in listed] == [slow, fast]
