"""The servers panel and the catalog screen driven by keys (Pilot), with real llama-servers."""

from __future__ import annotations

import time

import pytest
from conftest import free_port, make_app, start_outside, tiny_entry, write_user_catalog
from test_server_discovery import engine_launcher
from test_servers_cli import port_is_free

from sparktop.ui.screens.catalog import CatalogScreen
from sparktop.ui.screens.dialogs import ConfirmScreen, TextScreen
from sparktop.ui.screens.help import HelpScreen
from sparktop.ui.widgets.servers_panel import ServersTable

pytestmark = pytest.mark.slow


async def wait_until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.2)
    raise AssertionError("condition not met in time")


def names(app) -> dict[str, str]:
    return {s.name: s.health for s in app.servers}


async def serve_from_catalog(pilot, app, name: str) -> None:
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
    table = app.screen.query_one("#catalog-table")
    table.move_cursor(row=table.get_row_index(name))
    await pilot.press("s")


def select(app, name: str) -> None:
    table = app.query_one(ServersTable)
    key = next(s.key for s in app.servers if s.name == name)
    table.move_cursor(row=table.get_row_index(key))


async def test_serve_logs_test_and_stop_with_keys(llama_server, tiny_gguf, isolated_dirs):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await serve_from_catalog(pilot, app, "tiny")
        await wait_until(pilot, lambda: names(app).get("tiny") == "ready")
        await pilot.press("escape")
        await pilot.pause()
        table = app.query_one(ServersTable)
        assert table.row_count == 1
        row = table.get_row_at(0)
        assert row[0] == "tiny" and row[1] == "llama.cpp" and row[3] == str(port)
        assert row[5] == "ready"

        select(app, "tiny")
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert "# sparktop:" in app.screen.text and "llama-server" in app.screen.text
        await pilot.press("escape")

        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), timeout=120)
        report = app.screen.text
        assert "PASS  /health" in report and "PASS  /v1/chat/completions" in report
        assert "FAIL  coherence" in report and "gibberish" in report
        await pilot.press("escape")

        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert '"@ai-sdk/openai-compatible"' in app.screen.text
        assert f"127.0.0.1:{port}/v1" in app.screen.text
        await pilot.press("escape")

        await wait_until(pilot, lambda: app.busy is None)
        await pilot.press("x")
        await wait_until(pilot, lambda: "tiny" not in names(app), timeout=30)
        assert port_is_free(port)


async def test_switching_in_an_exclusive_group_asks_first(llama_server, tiny_gguf, isolated_dirs):
    port_a, port_b = free_port(), free_port()
    write_user_catalog(
        isolated_dirs["config"],
        [
            tiny_entry("model-a", tiny_gguf, port_a, exclusive="big"),
            tiny_entry("model-b", tiny_gguf, port_b, exclusive="big"),
        ],
    )
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await serve_from_catalog(pilot, app, "model-a")
        await wait_until(pilot, lambda: names(app).get("model-a") == "ready")
        await wait_until(pilot, lambda: app.busy is None)
        table = app.screen.query_one("#catalog-table")
        table.move_cursor(row=table.get_row_index("model-b"))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Stops first: model-a" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.5)
        assert names(app) == {"model-a": "ready"}

        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: names(app) == {"model-b": "ready"}, timeout=90)
        assert port_is_free(port_a)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.busy is None)
        select(app, "model-b")
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.servers, timeout=30)


async def test_outside_server_needs_confirmation_to_stop(llama_server, tiny_gguf, no_orphans):
    port = free_port()
    outside = start_outside(
        [llama_server, "-m", str(tiny_gguf), "--alias", "by-hand", "--port", str(port)],
        no_orphans,
    )
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: names(app).get("by-hand") == "ready")
        assert app.query_one(ServersTable).get_row_at(0)[0] == "by-hand *"  # * = not ours
        select(app, "by-hand")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "not started by sparktop" in app.screen.question
        await pilot.press("n")
        await pilot.pause(0.5)
        assert outside.poll() is None
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: outside.poll() is not None, timeout=30)


async def test_a_hung_server_shows_not_responding_and_keys_stay_quick(tmp_path, no_orphans):
    """A poll that hangs for its whole timeout never holds the keys up.

    The poll timeout is 10 s here, so a key waiting behind a poll would take seconds; keys
    answering in well under half of it (5 s, room for a loaded 2-core CI box) show they don't.
    """
    from sparktop.config import Config, ServerSettings

    port = free_port()
    launcher = engine_launcher(tmp_path, "llama-server", "llama.cpp", "hang")
    start_outside([str(launcher), "--port", str(port), "--alias", "stuck"], no_orphans)
    config = Config(servers=ServerSettings(timeout=10.0))
    app = make_app("nogpu", watch_servers=True, config=config)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: names(app).get("stuck") == "not responding", timeout=60)
        for _ in range(3):
            started = time.monotonic()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert time.monotonic() - started < 5.0


async def test_servers_outlive_the_tui_and_are_adopted_again(
    llama_server, tiny_gguf, isolated_dirs
):
    from conftest import _alive, run_cli

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await serve_from_catalog(pilot, app, "tiny")
        await wait_until(pilot, lambda: names(app).get("tiny") == "ready")
        await wait_until(pilot, lambda: app.busy is None)
        pid = next(s.pid for s in app.servers)
        await pilot.press("escape", "q")
    assert _alive(pid), "quitting sparktop must leave the served model running"
    again = make_app("nogpu", watch_servers=True)
    async with again.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: names(again).get("tiny") == "ready")
        server = again.servers[0]
        assert server.managed and server.pid == pid and server.log_path
    assert run_cli("stop", "tiny", timeout=60).returncode == 0
    assert not _alive(pid)


async def test_a_stop_from_outside_shows_at_once_not_an_idle_interval_later(
    llama_server, tiny_gguf, no_orphans
):
    """A server killed from another shell leaves the table on the next poll, which its exit
    starts: with a 60 s idle interval, a wait for the interval would show a stale *ready*."""
    from sparktop.config import Config, ServerSettings

    port = free_port()
    outside = start_outside(
        [llama_server, "-m", str(tiny_gguf), "--alias", "elsewhere", "--port", str(port)],
        no_orphans,
    )
    config = Config(servers=ServerSettings(interval=60.0, idle_interval=60.0))
    app = make_app("nogpu", watch_servers=True, config=config)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: "elsewhere" in names(app), timeout=60)
        for _ in range(120):  # polls every 60 s: ask now until it is ready
            if names(app).get("elsewhere") == "ready":
                break
            app.screen.wake()
            await pilot.pause(0.5)
        assert names(app).get("elsewhere") == "ready"
        await pilot.pause(0.5)
        outside.terminate()
        await wait_until(pilot, lambda: "elsewhere" not in names(app), timeout=30)
