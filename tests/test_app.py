"""The full-screen app driven as a user would, through Textual's Pilot."""

from __future__ import annotations

import asyncio
import json
import threading

from conftest import make_app

from sparktop.probes.system import SystemProbe
from sparktop.ui.screens.help import HelpScreen
from sparktop.ui.widgets.gpu_panel import GpuPanel
from sparktop.ui.widgets.memory_panel import MemoryPanel


async def wait_for_data(app, pilot) -> None:
    await asyncio.wait_for(app.snapshot_ready.wait(), 10)
    await pilot.pause()


async def test_question_mark_opens_help_listing_every_binding():
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        title, rows = app.screen.sections[0]
        assert title == "sparktop"
        assert {("q", "Quit"), ("?", "Help"), ("c", "Theme"), ("w", "Warnings")} <= set(rows)
        assert "ctrl+p" in [key for key, _ in rows]
        view_title, view_rows = app.screen.sections[1]
        assert view_title == "This view"  # the main view's own keys, server keys included
        assert {("m", "Models"), ("x", "Stop"), ("t", "Test"), ("b", "Bench")} <= set(view_rows)
        assert {("f", "Hosts"), ("r", "Refresh")} <= set(view_rows)
        general = dict(app.screen.sections[-1][1])
        assert general.get("^q") == "Quit"  # Textual's own keys are listed too
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits():
    app = make_app("nogpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_theme_key_switches_and_the_choice_persists(isolated_dirs):
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        assert app.theme == "sparktop-dark"
        await pilot.press("c")
        await pilot.pause()
        chosen = app.theme
        assert chosen != "sparktop-dark" and chosen.startswith("sparktop-")
        await pilot.pause(0.1)
    saved = json.loads((isolated_dirs["state"] / "ui.json").read_text())
    assert saved["theme"] == chosen
    again = make_app("spark")
    async with again.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert again.theme == chosen


async def test_command_palette_switches_theme(isolated_dirs):
    app = make_app("spark")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_data(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"theme by name")  # Textual's theme picker (c's is "Next colour theme")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press(*"high-contrast")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.theme == "sparktop-high-contrast"
    saved = json.loads((isolated_dirs["state"] / "ui.json").read_text())
    assert saved["theme"] == "sparktop-high-contrast"


async def test_bad_user_theme_warns_and_starts_with_the_default(isolated_dirs):
    themes = isolated_dirs["config"] / "themes"
    themes.mkdir(parents=True)
    (themes / "bad.yaml").write_text("name: bad\ncolors:\n  primary: 12\n")
    from sparktop.ui.app import SparktopApp
    from sparktop.ui.themes import load_themes

    loaded, warnings = load_themes()
    app = make_app("nogpu", themes=loaded, warnings=warnings, theme="bad")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_data(app, pilot)
        assert app.theme == "sparktop-dark"
        messages = [n.message for n in app._notifications]
        assert any("bad.yaml:3: colors.primary" in m for m in messages)
        assert any("theme 'bad' not found" in m for m in messages)
    assert isinstance(app, SparktopApp)


class SlowProbe(SystemProbe):
    """A probe stuck until released (at most 60 s), like NVML on a wedged driver."""

    release = threading.Event()

    def collect(self):
        self.release.wait(60)
        return super().collect()


async def test_a_stuck_probe_never_freezes_the_keys():
    from conftest import load_fake_nvml, machine_roots

    from sparktop.ui.app import SparktopApp

    app = SparktopApp(
        probe=SlowProbe(machine_roots("spark"), nvml=load_fake_nvml("spark")), interval=3600
    )
    async with app.run_test(size=(80, 24)) as pilot:
        # keys answer while the probe is stuck (no wall-clock bound: CI's 2 cores are busy)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.last_snapshot is None  # the probe is still busy
        await pilot.press("escape")
        SlowProbe.release.set()


async def test_panels_show_the_unified_pool_on_spark():
    app = make_app("spark")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        memory = app.query_one(MemoryPanel).text()
        gpus = app.query_one(GpuPanel).text()
    assert "GPU 58.0 GiB" in memory and "cache 50.0 GiB" in memory
    assert "drop_caches" in memory
    assert "NVIDIA GB10 unified" in gpus and "llama-server" in gpus


async def test_no_gpu_panel_says_why():
    app = make_app("nogpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        gpus = app.query_one(GpuPanel).text()
    assert "No GPU visible: NVML library not found" in gpus


async def test_interval_drives_refresh():
    app = make_app("strix", interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(app, pilot)
        await pilot.pause(0.6)
        assert len(app.query_one(MemoryPanel).history) >= 3


async def test_linux_console_starts_with_the_16_colour_theme(monkeypatch):
    monkeypatch.setenv("TERM", "linux")
    app = make_app("nogpu")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "sparktop-console"
