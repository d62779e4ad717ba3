"""Keys act on what the screen shows (Pilot): server keys only where a server row is on
screen, `f` opens the hosts, `enter` a model's details, the command palette lists each
screen's own actions, and every table moves with ↑/↓, j/k, Home/End and PgUp/PgDn."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import _alive, free_port, make_app, start_outside, tiny_entry, write_user_catalog
from test_server_discovery import engine_launcher
from test_servers_cli import port_is_free
from test_tui_servers import serve_from_catalog, wait_until
from textual.widgets._footer import FooterKey

from sparktop.snapshot import ExternalDownloadInfo
from sparktop.ui.screens.catalog import CatalogScreen
from sparktop.ui.screens.dialogs import TextScreen
from sparktop.ui.screens.fleet import FleetScreen
from sparktop.ui.widgets.downloads_panel import DownloadsTable
from sparktop.ui.widgets.servers_panel import ServersTable


def footer(app) -> set[str]:
    """What the footer of the current screen offers (descriptions of the shown keys)."""
    return {key.description for key in app.screen.query(FooterKey)}


def palette(app) -> set[str]:
    """The titles the command palette would list on the current screen."""
    return {command.title for command in app.get_system_commands(app.screen)}


def serving(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        return answer.status == 200


SERVER_KEYS = {"Stop", "Test", "Logs", "Bench"}


@pytest.mark.slow
async def test_server_keys_never_reach_a_server_from_the_models_screen(
    llama_server, tiny_gguf, isolated_dirs
):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("smol", tiny_gguf, port)])
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.servers_ready.wait()
        assert not SERVER_KEYS & footer(app)  # no server yet: no server keys
        # served by sparktop: stopping it would not ask first
        await serve_from_catalog(pilot, app, "smol")
        await wait_until(pilot, lambda: [s.health for s in app.servers] == ["ready"], 120)
        await wait_until(pilot, lambda: app.busy is None)
        pid = app.servers[0].pid

        # the Models screen: its own keys only, whatever the main view has selected
        await pilot.pause(0.2)
        assert {"Serve", "Details"} <= footer(app) and not SERVER_KEYS & footer(app)
        commands = palette(app)
        assert {"Serve", "Download", "Details", "Help", "Quit"} <= commands
        assert not {"Stop", "Test", "Bench", "Hosts"} & commands
        for key in "xtlb":
            await pilot.press(key)
        await pilot.pause(1.0)
        assert isinstance(app.screen, CatalogScreen)  # no log, bench or stop question
        assert _alive(pid) and serving(port)
        assert app.busy is None

        # back on the main view the selected row is there: the keys are bound
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert footer(app) >= SERVER_KEYS
        assert {"Stop", "Test", "Bench", "Logs", "Hosts", "Models"} <= palette(app)
        assert "Serve" not in palette(app)
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.servers, timeout=60)
        assert port_is_free(port)
        await pilot.pause(0.2)
        assert not SERVER_KEYS & footer(app)


async def test_f_opens_the_hosts_screen_and_back():
    app = make_app("nogpu")
    async with app.run_test(size=(120, 36)) as pilot:
        await app.snapshot_ready.wait()
        await pilot.pause()
        assert "Hosts" in footer(app)
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
        await wait_until(pilot, lambda: app.screen.query_one("#fleet-table").row_count == 1)
        assert app.screen.query_one("#fleet-table").get_row_at(0)[0] == "local"
        await pilot.press("f")
        await wait_until(pilot, lambda: not isinstance(app.screen, FleetScreen))


async def test_command_palette_runs_a_screen_key(isolated_dirs):
    app = make_app("nogpu")
    async with app.run_test(size=(120, 36)) as pilot:
        await app.snapshot_ready.wait()
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"hosts")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))


async def test_enter_on_a_model_opens_its_details(isolated_dirs, tmp_path):
    write_user_catalog(isolated_dirs["config"], [tiny_entry("smol", tmp_path / "x.gguf", 8080)])
    app = make_app("nogpu")
    async with app.run_test(size=(120, 36)) as pilot:
        await app.snapshot_ready.wait()
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        await pilot.pause(0.2)
        assert "Details" in footer(app)
        table = app.screen.query_one("#catalog-table")
        table.move_cursor(row=table.get_row_index("smol"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert app.screen.title_text == "model smol"


async def press_and_read(pilot, table, key: str) -> int:
    await pilot.press(key)
    await pilot.pause()
    return table.cursor_row


async def check_row_keys(pilot, table) -> None:
    """↑/↓, j/k, Home/End and PgUp/PgDn move the focused table's row cursor."""
    last = table.row_count - 1
    assert last >= 2 and table.has_focus
    table.move_cursor(row=0)
    assert await press_and_read(pilot, table, "down") == 1
    assert await press_and_read(pilot, table, "j") == 2
    assert await press_and_read(pilot, table, "k") == 1
    assert await press_and_read(pilot, table, "up") == 0
    assert await press_and_read(pilot, table, "end") == last
    assert await press_and_read(pilot, table, "home") == 0
    assert await press_and_read(pilot, table, "pagedown") > 1
    assert await press_and_read(pilot, table, "pageup") == 0


@pytest.mark.slow
async def test_the_servers_table_has_the_keys_from_the_start(tmp_path, no_orphans):
    launcher = engine_launcher(tmp_path, "llama-server", "llama.cpp", "ok")
    for name in ("one", "two", "three"):
        start_outside([str(launcher), "--port", str(free_port()), "--alias", name], no_orphans)
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.servers) == 3, timeout=60)
        await pilot.pause(0.2)
        table = app.query_one(ServersTable)
        assert app.focused is table  # no click, no tab
        assert footer(app) >= SERVER_KEYS
        await check_row_keys(pilot, table)


async def test_row_keys_in_the_models_hosts_and_downloads_tables(isolated_dirs):
    hosts = "".join(
        f"  - name: box{i}\n    agent: http://127.0.0.1:{free_port()}\n    timeout: 1\n"
        for i in range(3)
    )
    (isolated_dirs["config"] / "config.yaml").parent.mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "config.yaml").write_text(f"hosts:\n{hosts}")
    from sparktop.config import load_config

    config = load_config()
    assert len(config.hosts) == 3
    app = make_app("nogpu", config=config)
    async with app.run_test(size=(120, 30)) as pilot:
        await app.snapshot_ready.wait()
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        await check_row_keys(pilot, app.screen.query_one("#catalog-table"))
        await pilot.press("escape", "f")
        await wait_until(pilot, lambda: isinstance(app.screen, FleetScreen))
        await check_row_keys(pilot, app.screen.query_one("#fleet-table"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main)

        await wait_until(pilot, lambda: app.main._downloads_table is not None)
        downloads = app.query_one(DownloadsTable)
        records = [
            ExternalDownloadInfo(f"/models/m{i}.gguf.part", "x", f"org/m{i}", f"m{i}.gguf", i)
            for i in range(40)
        ]
        downloads.show(records)
        app.query_one("#downloads-box").display = True
        downloads.focus()
        await pilot.pause()
        await check_row_keys(pilot, downloads)
