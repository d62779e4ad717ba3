"""Serving by memory: stop the least recently used servers to make room (`serve --evict`, the
TUI's serve question), `keep: true`, the refusal with numbers, and `idle_stop_after`.

The fit reads MemAvailable from the probe roots: a proc tree of links to the real /proc with
a meminfo of our own makes the real llama-servers fit, or not, as each test needs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
from conftest import (
    free_port,
    make_app,
    run_cli,
    start_outside,
    tiny_entry,
    wait_for,
    write_user_catalog,
)
from test_tui_servers import serve_from_catalog, wait_until

from sparktop.servers.evict import Candidate, choose
from sparktop.ui.screens.dialogs import ConfirmScreen

GIB = 1024**3
MIB = 1024**2


# -- the choice -----------------------------------------------------------------------------


def cands(*specs: tuple[str, int, float] | tuple[str, int, float, bool]) -> list[Candidate]:
    return [Candidate(s[0], s[1], s[2], keep=bool(s[3:] and s[3])) for s in specs]


def names(chosen) -> list[str] | None:
    return None if chosen is None else [c.item for c in chosen]


def test_nothing_is_stopped_when_it_fits_already():
    assert names(choose(10, 10, cands(("a", 5, 0.0)))) == []


def test_the_fewest_servers_then_the_least_recently_used():
    servers = cands(("old-small", 4, 100.0), ("new-big", 10, 300.0), ("mid-big", 10, 200.0))
    # one server is enough: of the two big ones, the one used longer ago
    assert names(choose(20, 12, servers)) == ["mid-big"]
    # the least recently used when several would do
    assert names(choose(20, 17, servers)) == ["old-small"]
    # two needed: the oldest pair that frees enough
    assert names(choose(30, 16, servers)) == ["old-small", "mid-big"]
    assert names(choose(30, 12, servers)) == ["mid-big", "new-big"]


def test_keep_is_never_chosen_and_too_little_is_none():
    servers = cands(("kept", 50, 0.0, True), ("a", 5, 10.0), ("b", 5, 20.0))
    assert names(choose(100, 91, servers)) == ["a", "b"]
    assert choose(100, 80, servers) is None  # 11 free without the kept one: not enough


# -- when each server was last used ----------------------------------------------------------


def test_activity_comes_from_the_request_counters_and_is_shared(tmp_path):
    from sparktop.servers.idle import ActivityLog, idle_states
    from sparktop.servers.info import READY, ServerInfo

    def server(pid: int, tokens: float, running: int = 0) -> ServerInfo:
        return ServerInfo(name=f"s{pid}", engine="llama.cpp", pid=pid, port=pid, health=READY,
                          uptime_s=600, prompt_tokens_total=tokens, gen_tokens_total=0,
                          running=running, managed=True, catalog_name=f"s{pid}")  # fmt: skip

    log = ActivityLog(tmp_path)
    # first seen: one that served nothing is idle since it started; one that served, now
    seen = log.observe([server(1, 0), server(2, 50)], now=1000.0)
    assert seen == {"1:1": 400.0, "2:2": 1000.0}
    # counters still: nothing changes; counters moved or a request running: active now
    seen = log.observe([server(1, 0), server(2, 50), server(3, 0, running=1)], now=1100.0)
    assert seen == {"1:1": 400.0, "2:2": 1000.0, "3:3": 1100.0}
    seen = log.observe([server(1, 8), server(2, 50)], now=1200.0)  # 3 is gone: forgotten
    assert seen == {"1:1": 1200.0, "2:2": 1000.0}
    # another sparktop process reads what this one saw
    assert ActivityLog(tmp_path).last_active(server(2, 50), now=5000.0) == 1000.0
    states = idle_states([server(1, 8), server(2, 50)], {"s2": 300.0}, seen, now=1250.0)
    assert [(s.server.name, s.idle_s, s.stop_in_s, s.due) for s in states] == [
        ("s2", 250.0, 50.0, False)
    ]


# -- the catalog keys -----------------------------------------------------------------------


def test_keep_and_idle_stop_after_are_read_and_checked(isolated_dirs, tiny_gguf):
    from sparktop.catalog.loader import load_catalog

    good = tiny_entry("good", tiny_gguf, 9001)
    good.update(keep=True, idle_stop_after="1h30m")
    bad = tiny_entry("bad", tiny_gguf, 9002)
    bad.update(keep="yes", idle_stop_after="soon")
    path = write_user_catalog(isolated_dirs["config"], [good, bad])
    catalog = load_catalog([path.parent])
    entry = catalog.get("good")
    assert entry is not None and entry.keep and entry.idle_stop_after_s == 5400
    assert "bad" in catalog.invalid
    problems = "\n".join(catalog.errors)
    assert f"{path}:" in problems
    assert "model bad: keep must be true or false, got 'yes'" in problems
    assert "model bad: idle_stop_after must be a duration" in problems and "'soon'" in problems


# -- serving by memory, with real llama-servers ---------------------------------------------


def proc_with_memory(where: Path, available: int, total: int = 64 * GIB) -> Path:
    """A proc root: links to the real /proc (so the running servers are seen), and a
    meminfo that says `available`."""
    where.mkdir(parents=True, exist_ok=True)
    for name in os.listdir("/proc"):
        if name != "meminfo" and not (where / name).is_symlink():
            (where / name).symlink_to(f"/proc/{name}")
    (where / "meminfo").write_text(
        f"MemTotal: {total // 1024} kB\nMemFree: {available // 1024} kB\n"
        f"MemAvailable: {available // 1024} kB\nBuffers: 0 kB\nCached: 0 kB\n"
        "SwapTotal: 0 kB\nSwapFree: 0 kB\n"
    )
    return where


def tiny_need(name: str) -> int:
    """What the fit says entry `name` needs (the tiny model, its KV cache, the overhead)."""
    from sparktop.catalog.fit import estimate_need
    from sparktop.catalog.loader import load_catalog

    entry = load_catalog().get(name)
    assert entry is not None
    need = estimate_need(entry, 64 * GIB).total_bytes
    assert need is not None
    return need


def env_with(proc: Path) -> dict[str, str]:
    return {**os.environ, "SPARKTOP_PROC_ROOT": str(proc)}


def status() -> dict[str, dict]:
    doc = json.loads(run_cli("status", "--json").stdout)
    return {s["name"]: s for s in doc["servers"] if s["health"] != "crashed"}


def ask(port: int) -> None:
    """One request, so the server counts as used now."""
    reply = httpx.post(
        f"http://127.0.0.1:{port}/v1/completions",
        json={"prompt": "hello", "max_tokens": 2},
        timeout=30,
    )
    assert reply.status_code == 200


@pytest.fixture
def two_running(llama_server, tiny_gguf, isolated_dirs):
    """Entries a, b (running; b just answered a request) and c (not running): ports."""
    ports = {name: free_port() for name in "abc"}
    entries = [tiny_entry(name, tiny_gguf, port) for name, port in ports.items()]
    write_user_catalog(isolated_dirs["config"], entries)
    for name in "ab":
        result = run_cli("serve", name, timeout=90)
        assert result.returncode == 0, result.stderr
    ask(ports["b"])
    yield ports
    for name in "abc":
        run_cli("stop", name, timeout=60)


@pytest.mark.slow
def test_evict_stops_the_idle_server_and_the_other_keeps_serving(two_running, tmp_path):
    # c fits if one server's memory comes back, not before
    proc = proc_with_memory(tmp_path / "proc", tiny_need("c") - 1 * MIB)
    refused = run_cli("serve", "c", env=env_with(proc))
    assert refused.returncode == 1
    assert "c does not fit" in refused.stderr and "stop a (idle " in refused.stderr
    assert "--evict" in refused.stderr
    assert set(status()) == {"a", "b"}

    result = run_cli("serve", "c", "--evict", env=env_with(proc), timeout=90)
    assert result.returncode == 0, result.stderr
    assert "to make room: stop a (idle " in result.stdout and "→ fits" in result.stdout
    assert "stopped a (pid" in result.stdout and "came back" in result.stdout
    running = status()
    assert set(running) == {"b", "c"}
    assert running["b"]["health"] == "ready" and running["c"]["health"] == "ready"
    ask(two_running["b"])


@pytest.mark.slow
def test_keep_true_is_never_stopped_to_make_room(two_running, tmp_path, isolated_dirs, tiny_gguf):
    entries = [tiny_entry(name, tiny_gguf, port) for name, port in two_running.items()]
    entries[0]["keep"] = True  # a: idle, but kept
    write_user_catalog(isolated_dirs["config"], entries)
    proc = proc_with_memory(tmp_path / "proc", tiny_need("c") - 1 * MIB)
    result = run_cli("serve", "c", "--evict", env=env_with(proc), timeout=90)
    assert result.returncode == 0, result.stderr
    assert "to make room: stop b (idle " in result.stdout
    assert set(status()) == {"a", "c"}


@pytest.mark.slow
def test_refused_with_the_numbers_when_nothing_would_make_room(two_running, tmp_path):
    proc = proc_with_memory(tmp_path / "proc", 100 * MIB)
    result = run_cli("serve", "c", "--evict", env=env_with(proc))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("sparktop: error: c does not fit: needs ")
    # both named (in the order they would go: equally idle here, so either)
    assert re.search(r"stopping (a, b|b, a) would free ", line) and " short of the " in line
    assert set(status()) == {"a", "b"}


@pytest.mark.slow
def test_the_agent_stops_a_server_idle_too_long(llama_server, tiny_gguf, isolated_dirs, no_orphans):
    import sys

    entry = tiny_entry("sleepy", tiny_gguf, free_port())
    entry["idle_stop_after"] = "2s"
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "sleepy", timeout=90).returncode == 0
    agent = start_outside(
        [sys.executable, "-m", "sparktop", "agent", "--port", str(free_port())], no_orphans
    )
    try:
        wait_for(lambda: "sleepy" not in status(), timeout=60, interval=1.0)
    finally:
        agent.terminate()
        agent.wait(timeout=10)


# -- the TUI --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_tui_serve_question_offers_the_eviction_and_carries_it_out(
    two_running, tmp_path, monkeypatch
):
    proc = proc_with_memory(tmp_path / "proc", tiny_need("c") - 1 * MIB)
    monkeypatch.setenv("SPARKTOP_PROC_ROOT", str(proc))
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: {s.name for s in app.servers} == {"a", "b"})
        await serve_from_catalog(pilot, app, "c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.question
        assert "does not fit" in question
        assert "To make room it stops first: stop a (idle " in question and "→ fits" in question
        await pilot.press("y")
        await wait_until(pilot, lambda: app.busy is None and "a" not in status(), timeout=90)
    monkeypatch.delenv("SPARKTOP_PROC_ROOT")
    assert set(status()) == {"b", "c"}


@pytest.mark.slow
async def test_tui_stops_a_server_idle_too_long(llama_server, tiny_gguf, isolated_dirs):
    entry = tiny_entry("sleepy", tiny_gguf, free_port())
    entry["idle_stop_after"] = "3s"
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "sleepy", timeout=90).returncode == 0
    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: not any(s.name == "sleepy" for s in app.servers) and
                         app.server_polls > 1, timeout=60)  # fmt: skip
        notices = [n.message for n in app._notifications]
        assert any("stopped sleepy" in n and "no request for" in n for n in notices)
    assert "sleepy" not in status()


@pytest.mark.slow
def test_status_gives_the_idle_countdown(llama_server, tiny_gguf, isolated_dirs):
    entry = tiny_entry("sleepy", tiny_gguf, free_port())
    entry["idle_stop_after"] = "1h"
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "sleepy", timeout=90).returncode == 0
    try:
        doc = json.loads(run_cli("status", "--json").stdout)
        server = next(s for s in doc["servers"] if s["name"] == "sleepy")
        assert 3000 < server["idle_stop_in_s"] <= 3600
        assert "idle stop in" in run_cli("status", env={**os.environ, "COLUMNS": "160"}).stdout
    finally:
        run_cli("stop", "sleepy", timeout=60)
