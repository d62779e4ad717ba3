"""`o` sorts and `/` filters the servers and models tables; Models marks running entries."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import free_port, make_app, start_outside, tiny_entry, write_user_catalog
from test_layout import _with_servers, screen_text
from test_snapshots import fake_servers
from test_tui_servers import wait_until

from sparktop.ui import messages as msg
from sparktop.ui.screens.catalog import CatalogScreen
from sparktop.ui.widgets.row_table import FilterInput
from sparktop.ui.widgets.servers_panel import ServersTable

pytestmark = pytest.mark.slow


def shown(table) -> list[str]:
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_servers_sort_by_name_and_filter(llama_server, tiny_gguf, no_orphans):
    ports = {"zeta": free_port(), "alpha": free_port()}
    for name, port in ports.items():  # zeta on the lower port: the port order differs
        start_outside(
            [llama_server, "-m", str(tiny_gguf), "--port", str(port), "-c", "512",
             "--alias", name],
            no_orphans,
        )  # fmt: skip
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.servers) == 2)
        table = app.query_one(ServersTable)
        table.focus()
        by_port = [f"{s.name} *" for s in sorted(app.servers, key=lambda s: s.port)]
        assert shown(table) == by_port
        await pilot.press("o")  # PORT → NAME
        assert table.sort_by == "NAME"
        assert shown(table) == ["alpha *", "zeta *"]
        assert table.columns["NAME"].label.plain == "NAME ▼"
        app.main.wake()
        await wait_until(pilot, lambda: app.main.server_polls >= 3)
        assert shown(table) == ["alpha *", "zeta *"]  # polls keep the order

        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.focused, FilterInput))
        await pilot.press("z", "e")
        assert shown(table) == ["zeta *"]
        assert table.selected is not None and table.selected.name == "zeta"
        await pilot.press("enter")  # keeps the filter, back in the rows
        assert app.focused is table and shown(table) == ["zeta *"]
        app.main.wake()
        polls = app.main.server_polls
        await wait_until(pilot, lambda: app.main.server_polls > polls)
        assert shown(table) == ["zeta *"]  # a poll keeps the filter
        await pilot.press("slash")
        await pilot.press("escape")  # clears it
        assert shown(table) == ["alpha *", "zeta *"] and not app.query(FilterInput)
        assert app.focused is table


async def test_models_mark_running_entries_sort_and_filter(
    llama_server, tiny_gguf, isolated_dirs, no_orphans
):
    port = free_port()
    write_user_catalog(
        isolated_dirs["config"],
        [tiny_entry("zz-running", tiny_gguf, port), tiny_entry("aa-idle", tiny_gguf, free_port())],
    )
    start_outside(
        [llama_server, "-m", str(tiny_gguf), "--port", str(port), "-c", "512",
         "--alias", "zz-running"],
        no_orphans,
    )  # fmt: skip
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_until(pilot, lambda: any(s.catalog_name == "zz-running" for s in app.servers))
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, CatalogScreen))
        table = app.screen.query_one("#catalog-table")
        names = shown(table)
        assert table.get_row("zz-running")[1] == "●" and table.get_row("aa-idle")[1] == ""
        await pilot.press("o")  # catalog order → MODEL
        assert shown(table) == sorted(names, key=str.lower)
        await pilot.press("o")  # → RUN: running first
        assert shown(table)[0] == "zz-running"
        await pilot.press("slash")
        await pilot.press(*"aa-i")
        assert shown(table) == ["aa-idle"]
        await pilot.press("escape")  # clears the filter; a second esc leaves the screen
        assert len(shown(table)) == len(names) and isinstance(app.screen, CatalogScreen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CatalogScreen))


@pytest.mark.parametrize("term", ["linux", "xterm-256color"])
async def test_the_filter_line_shows_its_placeholder_and_typed_text_while_focused(
    monkeypatch, term
):
    """`/` at 80×24 with more servers than rows: the line shows under the rows, its
    placeholder first, then what is typed, while it has the keys (it showed only a border)."""
    monkeypatch.setenv("TERM", term)
    app = make_app("spark", theme="sparktop-console" if term == "linux" else None)
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 6)
        await pilot.press("slash")
        await pilot.pause()
        line = app.query_one(FilterInput)
        assert app.focused is line

        def drawn() -> str:
            region, box = line.region, app.query_one("#servers-box").region
            assert region.height == 1 and region.bottom < box.bottom  # inside the box
            return screen_text(app)[region.y][region.x : region.right]

        assert "filter rows (esc clears)" in drawn()
        await pilot.press(*"gpt")
        await pilot.pause()
        assert app.focused is line
        assert drawn().strip() == "gpt"
        assert shown(app.query_one(ServersTable)) == ["gpt-oss-120b *"]


async def test_column_widths_follow_the_rows_and_the_sort_mark_stays_on_screen():
    """At 80×24, each `o` in turn: nothing to scroll sideways to and the sorted column's ▼
    in the header (the column kept when it would not fit); a crashed row's long HEALTH cell
    widens its column only while the row is there."""
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 6)
        table = app.query_one(ServersTable)
        box = app.query_one("#servers-box").region
        for _ in ServersTable.SORTS:
            await pilot.press("o")
            await pilot.pause()
            label = f"{table.sort_by} ▼"
            assert table.virtual_size.width <= table.scrollable_content_region.width, label
            header = screen_text(app)[box.y + 1][box.x : box.right]
            assert (label in header) == bool(table.sort_index), header

        servers = list(fake_servers(6))
        servers[1] = replace(servers[1], health="crashed", exit_cause="exited with 1")
        for shown_servers in (servers, servers[:1] + servers[2:]):
            app.main.post_message(msg.ServersPolled(tuple(shown_servers)))
            await pilot.pause()
            await pilot.pause()
        assert table.columns["HEALTH"].content_width == len("HEALTH")
        assert table.virtual_size.width <= table.scrollable_content_region.width
