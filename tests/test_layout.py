"""The main screen's layout (issue 18): panels take the rows their text needs, the servers
table the rest; narrow tables keep the columns that matter; the Linux console gets only
characters its font has; help wraps."""

from __future__ import annotations

import asyncio
import re

import pytest
from conftest import make_app
from test_snapshots import fake_servers
from textual.containers import VerticalScroll

from sparktop.snapshot import DownloadInfo
from sparktop.ui import messages as msg
from sparktop.ui.charset import encodable
from sparktop.ui.layout import BARS, BOX, DOWNLOADS_SHARE, SERVER_ROWS_SEEN, Needs, plan
from sparktop.ui.screens.catalog import CatalogTable
from sparktop.ui.widgets.downloads_panel import DownloadsTable
from sparktop.ui.widgets.memory_panel import MemoryPanel
from sparktop.ui.widgets.servers_panel import ServersTable


def screen_text(app) -> list[str]:
    """The rows of the screen as drawn (after every line filter)."""
    return ["".join(s.text for s in strip) for strip in app.screen._compositor.render_strips()]


async def _with_servers(pilot, count: int) -> None:
    await asyncio.wait_for(pilot.app.snapshot_ready.wait(), 10)
    await pilot.pause()
    pilot.app.main.post_message(msg.ServersPolled(fake_servers(count)))
    await pilot.pause()
    await pilot.pause()


async def test_at_80x24_the_servers_table_shows_name_health_tg_and_kv_without_scrolling():
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 6)
        table = app.query_one(ServersTable)
        shown = table.columns_shown
        assert {"NAME", "HEALTH", "TG t/s", "KV"} <= set(shown)
        assert not {"PID", "PROXY", "UP"} & set(shown)  # the first to go
        assert table.virtual_size.width <= table.size.width  # nothing to scroll to
        header = next(line for line in screen_text(app) if "NAME" in line)
        for label in ("NAME", "HEALTH", "TG t/s", "KV"):
            assert label in header
        assert table.fixed_columns == 1  # NAME stays when scrolling sideways


async def test_wide_windows_show_every_server_column():
    app = make_app("spark")
    async with app.run_test(size=(200, 60)) as pilot:
        await _with_servers(pilot, 6)
        assert app.query_one(ServersTable).columns_shown[:3] == ("NAME", "ENGINE", "PID")
        assert len(app.query_one(ServersTable).columns_shown) == 13


async def test_at_120x40_without_gpu_the_servers_box_gets_most_rows():
    app = make_app("nogpu")
    async with app.run_test(size=(120, 40)) as pilot:
        await _with_servers(pilot, 1)
        servers = app.screen.query_one("#servers-box").region
        gpus = app.screen.query_one("#gpus").region
        assert gpus.height <= 6  # the reason why, not 22 empty rows
        assert servers.height >= 20  # was 5 of 40
        assert servers.height > gpus.height + app.screen.query_one("#memory").region.height


async def test_at_80x24_models_keeps_model_size_needs_and_fit():
    app = make_app("nogpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 0)
        await pilot.press("m")
        await pilot.pause()
        table = app.screen.query_one(CatalogTable)
        assert {"MODEL", "ON DISK", "NEEDS", "FIT"} <= set(table.columns)
        assert table.virtual_size.width <= table.size.width
        assert table.fixed_columns == 1


@pytest.mark.parametrize("term", ["linux", "xterm-256color"])
async def test_console_theme_draws_only_console_font_characters(monkeypatch, term):
    """Main screen, Models and help at 80×24 with 6 servers: every character is one the
    VGA console's default font (CP437) has, borders ASCII."""
    monkeypatch.setenv("TERM", term)
    app = make_app("spark", theme="sparktop-console")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 6)
        views = {"main": screen_text(app)}
        await pilot.press("question_mark")
        await pilot.pause()
        views["help"] = screen_text(app)
        await pilot.press("escape", "m")
        await pilot.pause()
        views["models"] = screen_text(app)
        for view, lines in views.items():
            bad = {char for line in lines for char in line if not encodable(char)}
            assert not bad, f"{view}: {sorted(bad)}"
        assert views["main"][1].startswith("+- Memory")  # ASCII corners, not ╭
        assert "enter Details" in views["main"][-1]  # not ⏎


async def test_other_themes_keep_their_characters_outside_the_console(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 1)
        assert screen_text(app)[1].startswith("╭─ Memory")


async def test_unfocused_cursor_row_differs_from_the_header_in_the_console_theme(monkeypatch):
    monkeypatch.setenv("TERM", "linux")
    app = make_app("spark", theme="sparktop-console")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 2)
        table = app.query_one(ServersTable)
        app.screen.set_focus(None)
        await pilot.pause()
        assert not table.has_focus
        header = table.render_line(0)
        cursor = table.render_line(1)
        header_bg = {seg.style.bgcolor for seg in header if seg.text.strip() and seg.style}
        cursor_bg = {seg.style.bgcolor for seg in cursor if seg.text.strip() and seg.style}
        assert cursor_bg and None not in cursor_bg  # the row is marked
        assert not header_bg & cursor_bg


async def test_swap_line_is_swap_alone_and_help_wraps():
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 1)
        text = app.query_one(MemoryPanel).text()
        swap = next(line for line in text.splitlines() if line.startswith("Swap"))
        assert swap == "Swap 512.0 MiB / 16.0 GiB"
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        box = app.screen.query_one(VerticalScroll).region
        rows = screen_text(app)[box.y : box.bottom]
        shown = " ".join(row[box.x : box.right].strip(" │") for row in rows)
        assert "page cache and free." in " ".join(shown.split())  # the intro's end: wrapped


def test_chart_only_in_rows_left_over():
    tall = plan(Needs(height=60, wide=True, memory=6, gpus=6, servers=6, downloads=0))
    assert tall.chart >= 3 and tall.memory == tall.gpus == tall.system
    short = plan(Needs(height=24, wide=False, memory=7, gpus=6, servers=6, downloads=0))
    assert short.chart == 0
    assert 24 - 2 - short.system >= 2 + 1 + 4  # the servers keep a header and 4 rows


def test_a_short_window_with_hints_and_a_download_still_fits_the_servers_box():
    """Many memory hints that wrap, a download and a 22-row window: the panels are cut to
    the room, so the servers box keeps its few rows inside the window."""
    body = 22 - BARS
    for wide in (False, True):
        needs = Needs(height=22, wide=wide, memory=14, gpus=6, servers=3, downloads=2)
        shares = plan(needs)
        downloads = min(BOX + 1 + 2, int(22 * DOWNLOADS_SHARE))
        servers_floor = BOX + 1 + 3
        assert shares.system + downloads + servers_floor <= body, (wide, shares)


@pytest.mark.parametrize("machine", ["nogpu", "spark"])
async def test_at_80x24_a_download_leaves_the_servers_their_rows(machine):
    """Six servers and a finished download at 80×24: the downloads table drops columns
    rather than scroll sideways (its scrollbar took a row the servers were given), so the
    servers box shows its header and SERVER_ROWS_SEEN rows, and the boxes fill the window."""
    app = make_app(machine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _with_servers(pilot, 6)
        main = app.main
        main._downloads_table.show([DownloadInfo(id="d1", repo="org/tiny-GGUF", state="done",
                                                 total_bytes=10 << 20, done_bytes=10 << 20,
                                                 percent=100.0)])  # fmt: skip
        main._downloads_box.display = True
        main._share_rows()
        await pilot.pause()
        await pilot.pause()
        downloads = app.query_one(DownloadsTable)
        assert "BYTES" not in [key.value for key in downloads.columns]
        assert downloads.virtual_size.width <= downloads.scrollable_content_region.width
        assert app.query_one("#downloads-box").region.height == BOX + 1 + 1
        servers = app.query_one(ServersTable)
        assert servers.scrollable_content_region.height == 1 + SERVER_ROWS_SEEN
        boxes = ("#system", "#servers-box", "#downloads-box")
        assert sum(app.query_one(box).region.height for box in boxes) == 24 - BARS


async def test_a_narrow_top_bar_keeps_warnings_and_help_whole(isolated_dirs):
    """The version, the refresh interval, disk and uptime go first, so '3 warnings (w) │
    ? help' is never cut to '│ 3' in a narrow window; a wide window shows everything."""
    from sparktop import logs

    logs.setup(directory=isolated_dirs["state"])
    try:
        app = make_app("spark")
        async with app.run_test(size=(66, 24)) as pilot:
            await app.snapshot_ready.wait()
            for n in range(3):
                logs.LOGGER.warning("test warning %d from a server that went away", n)
            screen = app.screen
            screen._show_topbar(screen.last_snapshot)
            await pilot.pause()
            bar = str(screen.query_one("#topbar").render())
            # (the app may have warned of something of its own too: at least the 3)
            assert re.search(r"\b([3-9]|\d\d+) warnings \(w\) │ \? help$", bar), bar
            assert len(bar) <= 64, bar
            await pilot.resize_terminal(200, 40)
            await pilot.pause(0.3)
            screen._show_topbar(screen.last_snapshot)
            await pilot.pause()
            wide = str(screen.query_one("#topbar").render())
            assert wide.startswith("sparktop ") and "every " in wide and "? help" in wide
    finally:
        logs.shutdown()
