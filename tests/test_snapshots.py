"""What the screen looks like on a DGX Spark, a Strix Halo and a box without a GPU, at
80×24 and 160×48, and with 0, 1 and 6 servers at 80×24 (the Linux console), 120×40 and
200×60 (SVG snapshots under tests/__snapshots__; review changes with
`pytest --snapshot-update` and the HTML report)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_app

from sparktop.snapshot import ServerInfo
from sparktop.ui import messages as msg

NAMES = ("qwen3-coder-30b-a3b", "gpt-oss-120b", "llama-3.1-8b-instruct", "gemma-3-27b",
         "embed-bge-m3", "glm-4.5-air")  # fmt: skip
GIB = 1024**3


def fake_servers(count: int) -> tuple[ServerInfo, ...]:
    """`count` ready servers with fixed figures (the snapshots must not move)."""
    return tuple(
        ServerInfo(
            name=NAMES[i],
            engine=("llama.cpp", "vllm", "sglang")[i % 3],
            pid=4100 + 7 * i,
            port=8080 + i,
            health="ready",
            uptime_s=3600 * (i + 1) + 125,
            rss_bytes=(i + 2) * GIB,
            gpu_bytes=3 * (i + 1) * GIB,
            cpu_percent=12.0 * i,
            running=i % 2,
            waiting=0,
            prompt_tps=900.0 + i,
            gen_tps=40.5 + i,
            kv_usage=0.1 * i,
            managed=i % 2 == 0,
        )
        for i in range(count)
    )


async def _loaded(pilot) -> None:
    await asyncio.wait_for(pilot.app.snapshot_ready.wait(), 10)
    await pilot.pause()


def with_servers(count: int):
    """A run_before that shows `count` fake servers as the servers loop would."""

    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.pause()  # the servers box joins after the first frame
        pilot.app.main.post_message(msg.ServersPolled(fake_servers(count)))
        await pilot.pause()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("machine", ["spark", "strix", "nogpu"])
@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare, machine, size):
    assert snap_compare(make_app(machine), terminal_size=size, run_before=_loaded)


@pytest.mark.parametrize("servers", [0, 1, 6])
@pytest.mark.parametrize(
    ("size", "machine"), [((120, 40), "nogpu"), ((200, 60), "spark")], ids=["120x40", "200x60"]
)
def test_layout_with_servers(snap_compare, size, machine, servers):
    """Panels as tall as their text, the servers box the rest, the chart only in rows
    left over."""
    assert snap_compare(make_app(machine), terminal_size=size, run_before=with_servers(servers))


@pytest.mark.parametrize("servers", [0, 1, 6])
def test_linux_console_with_servers(snap_compare, monkeypatch, servers):
    """80×24 on the Linux console: ASCII borders, console-font characters only, the
    columns that matter (NAME, HEALTH, TG t/s, KV) without scrolling."""
    monkeypatch.setenv("TERM", "linux")
    app = make_app("spark", theme="sparktop-console")
    assert snap_compare(app, terminal_size=(80, 24), run_before=with_servers(servers))


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
