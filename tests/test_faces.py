"""Each action through both faces, against a real llama-server: the CLI (`sparktop …` in a
subprocess) and the TUI (keys through Pilot) must come to the same outcome, because both
call the same action (sparktop.actions)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import free_port, make_app, run_cli, tiny_entry, write_user_catalog
from test_tui_servers import names, select, serve_from_catalog, wait_until

from sparktop.ui.screens.dialogs import TextScreen

pytestmark = pytest.mark.slow

STOPPED = re.compile(
    r"stopped (\S+) \(pid \d+\) in [\d.]+ s: port free; (.+ of memory|no memory) came back"
)
RECORD_FIELDS = ("name", "served_name", "engine", "host", "port", "argv", "env")


def record_of(isolated_dirs, name: str) -> dict:
    records = json.loads((isolated_dirs["state"] / "servers.json").read_text())["servers"]
    return next(r for r in reversed(records) if r["name"] == name)


def comparable(record: dict) -> dict:
    """A managed-server record without what differs between two starts (pid, times, log)."""
    return {key: record.get(key) for key in RECORD_FIELDS}


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


def verdicts(lines: list[str]) -> list[tuple[str, str]]:
    """(PASS|FAIL, check) pairs of a test report, latencies left out."""
    found = []
    for line in lines:
        match = re.match(r"\s*(PASS|FAIL)\s+(\S+)", line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


@pytest.fixture
def catalog(llama_server, tiny_gguf, isolated_dirs):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    return port


async def test_serve_test_and_stop_agree_in_both_faces(catalog, isolated_dirs):
    # the CLI: serve, test, stop
    served = run_cli("serve", "tiny", timeout=120)
    assert served.returncode == 0, served.stderr
    assert "tiny is ready: http://127.0.0.1:" in served.stdout
    by_cli = record_of(isolated_dirs, "tiny")
    tested = run_cli("test", "tiny", timeout=180)
    cli_verdicts = verdicts(tested.stdout.splitlines())
    assert tested.returncode == 1  # a random-weight model fails the coherence check
    stopped = run_cli("stop", "tiny", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    cli_stop = STOPPED.search(stopped.stdout)
    assert cli_stop, stopped.stdout  # the CLI says how much memory came back

    # the TUI: the same three with keys
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await serve_from_catalog(pilot, app, "tiny")
        await wait_until(pilot, lambda: names(app).get("tiny") == "ready", timeout=120)
        await wait_until(pilot, lambda: app.busy is None)
        assert any("tiny is ready: http://127.0.0.1:" in n for n in notifications(app))
        by_tui = record_of(isolated_dirs, "tiny")
        await pilot.press("escape")
        select(app, "tiny")
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), timeout=180)
        tui_verdicts = verdicts(app.screen.text.splitlines())
        await pilot.press("escape")
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.servers, timeout=60)
        try:
            await wait_until(pilot, lambda: any(STOPPED.search(n) for n in notifications(app)))
        except AssertionError:
            raise AssertionError(notifications(app)) from None
        tui_stop = next(
            (STOPPED.search(n) for n in notifications(app) if STOPPED.search(n)), notifications(app)
        )

    assert comparable(by_tui) == comparable(by_cli)
    assert by_tui["pid"] != by_cli["pid"]
    assert tui_verdicts == cli_verdicts
    assert ("FAIL", "coherence") in tui_verdicts and ("PASS", "/health") in tui_verdicts
    assert tui_stop.group(1) == cli_stop.group(1) == "tiny"  # both report memory returned


@pytest.fixture
def benchy(llama_server, tiny_gguf, isolated_dirs):
    port = free_port()
    entry = tiny_entry("benchy", tiny_gguf, port, args=["--parallel", "1", "--jinja"])
    entry["serve"]["context"] = 1024
    entry["quant"] = "F32"
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "benchy", timeout=120).returncode == 0
    yield port
    run_cli("stop", "benchy", timeout=60)


KEPT = ("model", "quant", "engine", "serve_flags", "host", "hardware", "sparktop_version")


async def test_bench_runs_are_kept_with_the_same_fields_from_both_faces(benchy):
    from test_bench import open_bench_screen

    cli = run_cli("bench", "benchy", "--prompt", "64", "--gen", "16", "--reps", "1", timeout=300)
    assert cli.returncode == 0, cli.stderr
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: names(app).get("benchy") == "ready")
        select(app, "benchy")
        app.main.bench_lengths = (64, 16, 1)
        screen = await open_bench_screen(pilot, app)
        assert "kept as run" in "\n".join(screen.query_one("#bench-log").lines)
        await pilot.press("c")  # a concurrency sweep alone is kept too

        def swept() -> bool:
            log = "\n".join(screen.query_one("#bench-log").lines)
            return not screen.running and "concurrency: done" in log

        await wait_until(pilot, swept, timeout=300)
        await pilot.press("escape")
    runs = json.loads(run_cli("results", "--export", "json").stdout)
    assert sorted(r["kind"] for r in runs) == ["api", "api", "concurrency"]
    by_kind = {}
    for run in runs:
        by_kind.setdefault(run["kind"], []).append(run)
    cli_run, tui_run = by_kind["api"]
    sweep = by_kind["concurrency"][0]
    for key in KEPT:
        assert cli_run[key] == tui_run[key] == sweep[key], key
    assert tui_run["quant"] == "F32" and tui_run["engine"] == "llama.cpp"
    assert tui_run["serve_flags"] == "--parallel 1 --jinja"
