"""The main screen after the window changes size: the servers table keeps the keys across
the small-window summary and chooses its columns for every new width."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from conftest import make_app
from test_layout import _with_servers

from sparktop.ui.widgets.row_table import FilterInput
from sparktop.ui.widgets.servers_panel import ServersTable

EVERY_COLUMN = ("NAME", "ENGINE", "PID", "PORT", "PROXY", "HEALTH", "UP", "CPU%", "MEMORY",
                "RUN/WAIT", "PP t/s", "TG t/s", "KV")  # fmt: skip


@asynccontextmanager
async def six_servers(size: tuple[int, int]) -> AsyncIterator:
    """The app at `size` showing six servers: its Pilot."""
    app = make_app("spark")
    async with app.run_test(size=size) as pilot:
        await _with_servers(pilot, 6)
        yield pilot


async def _resize(pilot, width: int, height: int) -> None:
    """The new size, laid out (a refresh for the resize, one for what it changed)."""
    await pilot.resize_terminal(width, height)
    for _ in range(2):
        await pilot.pause()


async def test_after_the_summary_the_servers_table_has_the_keys_again():
    async with six_servers((80, 24)) as pilot:
        app = pilot.app
        table = app.query_one(ServersTable)
        assert app.focused is table
        await _resize(pilot, 60, 18)
        assert app.main.compact
        await _resize(pilot, 200, 50)
        assert not app.main.compact
        assert app.focused is table
        footer_keys = set(app.screen.active_bindings)
        assert {"enter", "o", "slash"} <= footer_keys
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("o")
        assert table.sort_by == "NAME"


async def test_the_filter_line_that_had_the_keys_gets_them_back():
    async with six_servers((80, 24)) as pilot:
        app = pilot.app
        await pilot.press("slash")
        await pilot.pause()
        line = app.query_one(FilterInput)
        await _resize(pilot, 60, 18)
        await _resize(pilot, 120, 40)
        assert app.focused is line
        await pilot.press("g")
        assert line.value == "g"


@pytest.mark.parametrize("start", [(80, 24), (60, 18)], ids=["80x24", "60x18"])
@pytest.mark.parametrize("end", [(200, 50), (160, 50)], ids=["200x50", "160x50"])
async def test_a_window_grown_wide_shows_every_server_column(start, end):
    async with six_servers(start) as pilot:
        table = pilot.app.query_one(ServersTable)
        if start == (80, 24):
            assert "ENGINE" not in table.columns_shown
        await _resize(pilot, *end)
        assert table.columns_shown == EVERY_COLUMN
        assert tuple(key.value for key in table.columns) == EVERY_COLUMN
        await _resize(pilot, 80, 24)  # and narrow again
        assert "ENGINE" not in table.columns_shown
        assert table.virtual_size.width <= table.size.width
