"""Benchmark input a user can get wrong, in both faces: lengths below 1, a prompt and
generation the served context cannot hold, a server's error body, a sweep that completed no
request, a run without figures offered as a champion."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port, make_app, run_cli, tiny_entry, write_user_catalog

from sparktop.actions import ActionError
from sparktop.actions import bench as actions
from sparktop.bench.store import ResultStore

SMALL = 256


def kept_runs() -> list[dict]:
    result = run_cli("results", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--reps", "0", "--prompt", "8", "--gen", "4"),
         "repetitions (--reps) must be at least 1, got 0"),
        (("--prompt", "-5"), "prompt tokens (--prompt) must be at least 1, got -5"),
        (("--gen", "0"), "generated tokens (--gen) must be at least 1, got 0"),
        (("--queue", "a", "b", "--reps", "-1"), "repetitions (--reps) must be at least 1, got -1"),
    ],
)  # fmt: skip
def test_bench_refuses_lengths_below_one_in_one_line(isolated_dirs, flags, said):
    result = run_cli("bench", "http://127.0.0.1:9", *flags)
    assert result.returncode == 2
    assert result.stderr == f"sparktop: error: {said}\n"
    assert kept_runs() == []


def test_the_action_layer_refuses_them_too(isolated_dirs):
    """The TUI goes through the action, not the CLI's flags."""
    from sparktop.config import load_config
    from sparktop.control import Control

    target = actions.BenchTarget("http://127.0.0.1:9", "m")
    with Control.from_config(load_config(None)) as control:
        depth = actions.BenchOptions.sweep("depth", actions.BenchOptions(prompt=0))
        for options in (actions.BenchOptions(reps=0), actions.BenchOptions(gen=-1), depth):
            with pytest.raises(ActionError) as info:
                actions.bench(control, target, options)
            assert info.value.code == 2 and "must be at least 1" in str(info.value)
    assert ResultStore().history() == []


def test_a_run_without_figures_is_never_made_champion(isolated_dirs):
    """A run kept with no figures (as an older sparktop kept `--reps 0`) stays out of the
    champions, even with --force."""
    run = ResultStore().add(model="m", kind="api", prompt_tokens=8, gen_tokens=4, repetitions=0)
    result = run_cli("results", "--promote", str(run), "--mode", "ask", "--force")
    assert result.returncode == 1
    assert result.stderr == (
        f"sparktop: error: run {run} (api) has no prefill or decode figures: nothing to rank "
        "it by, even with --force\n"
    )
    assert "ask        –" in run_cli("results", "--champions").stdout


# -- a served context smaller than the request -------------------------------------------


@pytest.fixture
def small(llama_server, tiny_gguf, isolated_dirs):
    """The tiny model served with a 256-token context, as a user's small -c."""
    port = free_port()
    entry = tiny_entry("benchy", tiny_gguf, port, context=SMALL)
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "benchy", timeout=120).returncode == 0
    yield port
    run_cli("stop", "benchy", timeout=60)


@pytest.mark.slow
def test_cli_says_the_context_is_too_small_before_sending(small, isolated_dirs):
    result = run_cli("bench", "benchy", timeout=120)
    assert result.returncode == 2
    assert result.stderr == (
        f"sparktop: error: the server's context is {SMALL} tokens; pp512 + tg128 needs 640: "
        "use --prompt/--gen (or serve with a larger context)\n"
    )
    assert kept_runs() == []
    fits = run_cli("bench", "benchy", "--prompt", "200", "--gen", "56", "--reps", "1",
                   timeout=120)  # fmt: skip
    assert fits.returncode == 0, fits.stderr
    assert [(r["prompt_tokens"], r["gen_tokens"]) for r in kept_runs()] == [(200, 56)]


@pytest.mark.slow
def test_a_server_error_shows_its_message_not_its_json(small):
    """What the server says (llama.cpp's error.message), not the JSON around it."""
    from sparktop.bench.api import BenchError, run_api_bench

    with pytest.raises(BenchError) as info:
        run_api_bench(f"http://127.0.0.1:{small}", "benchy", prompt_tokens=512, gen_tokens=8,
                      repetitions=1, warmup=False)  # fmt: skip
    text = str(info.value)
    assert "HTTP 400: request (512 tokens) exceeds the available context size" in text
    assert "{" not in text and '"' not in text


@pytest.mark.slow
async def test_tui_scales_the_run_and_sweeps_down_to_the_context_and_says_so(small):
    from test_bench import open_bench_screen
    from test_tui_servers import wait_until

    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_bench_screen(pilot, app)  # pp512 / tg128 × 3, as `b` runs
        summary = str(screen.query_one("#bench-summary").render())
        note = f"pp512 + tg128 scaled down to pp204 + tg51: the server's context is {SMALL}"
        assert summary.startswith(note) and "kept as run" in summary, summary
        screen.reps = 1

        def log() -> str:
            return "\n".join(screen.query_one("#bench-log").lines)

        for key, expect in (("c", "8 streams: "), ("d", "depth      0: prefill")):
            await pilot.press(key)
            await wait_until(pilot, lambda: not screen.running, timeout=120)
            assert expect in log() and "failed" not in log(), log()
    runs = kept_runs()
    assert sorted(r["kind"] for r in runs) == ["api", "concurrency", "depth"]
    assert all((r["prompt_tokens"], r["gen_tokens"]) == (204, 51) for r in runs)


# -- sweeps that measured nothing ----------------------------------------------------------


@pytest.fixture
def broken_engine() -> Iterator[tuple[str, dict]]:
    """A loopback stand-in for an engine that lists its model (vLLM's max_model_len in
    `answers["context"]`) and answers every completion with HTTP 500 and an error body."""
    answers: dict = {"context": 4096}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                model = {"id": "m", "max_model_len": answers["context"]}
                self._send(200, {"data": [{k: v for k, v in model.items() if v is not None}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/completions":
                self._send(500, {"object": "error", "message": "engine core died", "code": 500})
            else:
                self._send(404, {"error": {"message": "not found"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_sweep_that_completed_no_request_fails_and_is_not_kept(isolated_dirs, broken_engine):
    from sparktop.config import load_config
    from sparktop.control import Control

    base, answers = broken_engine
    target = actions.BenchTarget(base, "m")
    small = actions.BenchOptions(prompt=16, gen=8)
    with Control.from_config(load_config(None)) as control:
        with pytest.raises(ActionError) as info:
            actions.bench(control, target, actions.BenchOptions.sweep("concurrency", small))
        assert str(info.value) == (
            f"no request of the concurrency sweep completed: {base}: HTTP 500: engine core died"
        )
        answers["context"] = None  # a server that does not say its context: no depth fits
        with pytest.raises(ActionError) as info:
            actions.bench(control, target, actions.BenchOptions.sweep("depth", small))
        assert "does not say its context" in str(info.value)
    assert ResultStore().history() == []


# -- the bench screen's keys ---------------------------------------------------------------


def help_rows(app) -> dict[str, list[tuple[str, str]]]:
    """The open help's sections: title → (key, what it does) rows."""
    return {title: list(rows) for title, rows in app.screen.sections}


async def test_bench_screen_help_lists_its_own_keys_and_the_history_has_the_focus(
    isolated_dirs,
):
    """`?` on the bench screen says what each key does there (c: the concurrency sweep, not
    the theme); the kept runs have the focus from the start, so ↓/j move the row m marks."""
    from test_tui_servers import wait_until

    from sparktop.servers.info import ERROR, ServerInfo
    from sparktop.ui.screens.bench import BenchScreen
    from sparktop.ui.screens.help import HelpScreen

    store = ResultStore()
    ids = [store.add(model=f"m{n}", kind="api", prompt_tokens=8, gen_tokens=4, repetitions=1,
                     prefill_tps=100.0 + n, decode_tps=10.0 + n) for n in range(3)]  # fmt: skip
    app = make_app("nogpu")
    async with app.run_test(size=(120, 40)) as pilot:
        gone = ServerInfo("gone", "llama.cpp", None, None, health=ERROR)
        screen = BenchScreen(gone, app.main.control)
        await pilot.pause()
        await app.push_screen(screen)
        await wait_until(pilot, lambda: app.screen is screen and not screen.running)
        history = screen.query_one("#bench-history")
        assert screen.focused is history
        await pilot.press("down", "j")
        assert history.cursor_row == 2
        await pilot.press("m")
        assert screen.marked == ids[0]  # newest first: the third row is the oldest run
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        sections = help_rows(app)
        keys = {key: what for rows in sections.values() for key, what in rows}
        assert ("c", "Concurrency") in sections["This view"]
        assert "Theme" not in keys.values()
        for binding in screen.BINDINGS:  # every key of the screen, as it is bound
            assert keys[app.get_key_display(binding)] == binding.description
        assert ("q", "Quit") in sections["sparktop"] and ("w", "Warnings") in sections["sparktop"]
