"""What the screen looks like on a DGX Spark, a Strix Halo and a box without a GPU, at
80×24 and 160×48 (SVG snapshots under tests/__snapshots__; review changes with
`pytest --snapshot-update` and the HTML report)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_app


async def _loaded(pilot) -> None:
    await asyncio.wait_for(pilot.app.snapshot_ready.wait(), 10)
    await pilot.pause()


@pytest.mark.parametrize("machine", ["spark", "strix", "nogpu"])
@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, machine, size):
    assert snap_compare(make_app(machine), terminal_size=size, run_before=_loaded)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app("spark"), terminal_size=(80, 24), run_before=open_help)


def test_console_theme_on_spark(snap_compare):
    assert snap_compare(
        make_app("spark", theme="sparktop-console"), terminal_size=(80, 24), run_before=_loaded
    )
