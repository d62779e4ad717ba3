"""Benchmarks against a real llama-server: client vs server timings, llama-bench, kept results."""

from __future__ import annotations

import csv
import io
import json
import threading
import time

import pytest
from conftest import free_port, run_cli, tiny_entry, write_user_catalog

from sparktop.bench.api import BenchCancelled, run_api_bench
from sparktop.servers import http

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def bench_gguf(tmp_path_factory):
    """Large enough (8 layers x 512, ~77 MB) for stable tok/s on a CPU."""
    from tinymodel import write_tiny_llama

    path = tmp_path_factory.mktemp("bench") / "bench-f32.gguf"
    return write_tiny_llama(path, layers=8, n_embd=512, n_head=8, n_kv_head=4, n_ff=1024)


@pytest.fixture
def served(llama_server, bench_gguf, isolated_dirs):
    port = free_port()
    entry = tiny_entry("benchy", bench_gguf, port)
    entry["serve"]["context"] = 2048
    write_user_catalog(isolated_dirs["config"], [entry])
    assert run_cli("serve", "benchy", timeout=120).returncode == 0
    yield port
    run_cli("stop", "benchy", timeout=60)


def test_client_decode_speed_agrees_with_the_servers_own_timings(served):
    result = run_cli("bench", "benchy", "--json", "--prompt", "128", "--gen", "128", "--reps", "3",
                     "--llama-bench", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    samples = doc["api"]["samples"]
    assert len(samples) == 3 and doc["api"]["exact_prompt"] is True
    # each figure says where it comes from: the client's own clock, the server's reply
    assert doc["api"]["server_source"] == "the server's timings in each reply"
    assert "sparktop" in doc["api"]["client_source"]
    for sample in samples:
        assert sample["prompt_tokens"] == 128 and sample["generated_tokens"] == 128
        client, server = sample["decode_tps"], sample["server_decode_tps"]
        assert abs(client - server) / server < 0.10, (client, server)
        assert sample["prefill_tps"] > 0 and sample["ttft_s"] > 0
    tests = {row["test"]: row for row in doc["llama_bench"]}
    assert set(tests) == {"pp128", "tg128"}
    assert all(row["avg_ts"] > 0 and len(row["samples_ts"]) == 3 for row in tests.values())


def test_results_are_kept_compared_and_exported(served):
    for _ in range(2):
        assert run_cli("bench", "benchy", "--prompt", "64", "--gen", "32", "--reps", "2",
                       timeout=300).returncode == 0  # fmt: skip
    listing = run_cli("results")
    assert listing.returncode == 0 and listing.stdout.count("benchy") == 2
    rows = json.loads(run_cli("results", "--export", "json").stdout)
    assert [r["model"] for r in rows] == ["benchy", "benchy"]
    assert all(r["decode_tps"] > 0 and r["sparktop_version"] for r in rows)
    assert all(" · " in r["hardware"] and r["host"] for r in rows)
    table = list(csv.DictReader(io.StringIO(run_cli("results", "--export", "csv").stdout)))
    assert len(table) == 2 and float(table[0]["decode_tps"]) > 0
    markdown = run_cli("results", "--export", "markdown").stdout.splitlines()
    assert markdown[0].startswith("| time | model") and len(markdown) == 4
    ids = sorted(r["id"] for r in rows)
    compared = json.loads(
        run_cli("results", "--compare", str(ids[0]), str(ids[1]), "--json").stdout
    )
    assert "decode_tps" in compared["delta"] and compared["delta"]["decode_tps"]["pct"] is not None


def test_cancel_mid_run_leaves_the_server_idle(served):
    base = f"http://127.0.0.1:{served}"
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(BenchCancelled):
        run_api_bench(base, "benchy", prompt_tokens=64, gen_tokens=100000, repetitions=1,
                      warmup=False, cancel=cancel)  # fmt: skip
    assert time.monotonic() - started < 5

    deadline = time.monotonic() + 5
    while not idle(base):
        assert time.monotonic() < deadline, "the server kept generating after cancel"
        time.sleep(0.1)


def idle(base: str) -> bool:
    """No slot of the llama-server at `base` is processing a request."""
    slots = http.get(base + "/slots", timeout=2).json()
    return isinstance(slots, list) and not any(s.get("is_processing") for s in slots)


def test_depth_and_concurrency_sweeps(served):
    from sparktop.bench.api import concurrency_sweep, depth_sweep

    base = f"http://127.0.0.1:{served}"
    sweep = depth_sweep(base, "benchy", prompt_tokens=64, gen_tokens=16,
                        depths=(0, 512, 1024, 4096))  # fmt: skip
    assert [d for d, _ in sweep] == [0, 512, 1024]  # 4096 is beyond the 2048 served context
    assert [r.samples[0].prompt_tokens for _, r in sweep] == [64, 576, 1088]
    rows = concurrency_sweep(base, "benchy", streams=(1, 2), prompt_tokens=32, gen_tokens=16)
    assert [r["streams"] for r in rows] == [1, 2] and all(r["completed"] == r["streams"]
                                                          for r in rows)  # fmt: skip
    assert all(r["aggregate_decode_tps"] > 0 for r in rows)


def test_champions_follow_the_configured_replacement_rules(served, isolated_dirs):
    (isolated_dirs["config"] / "config.yaml").write_text(
        "bench:\n  rules:\n    code: {min_decode_tps: 1000000}\n    ask: {min_decode_tps: 1}\n"
    )
    # 32 tokens: a random-weight model's 8 can all be held back as incomplete UTF-8 and come
    # in one event, leaving no decode window to time (decode 0.0 t/s fails the ask rule)
    assert run_cli("bench", "benchy", "--prompt", "32", "--gen", "32", "--reps", "1",
                   timeout=300).returncode == 0  # fmt: skip
    run_id = json.loads(run_cli("results", "--export", "json").stdout)[0]["id"]
    refused = run_cli("results", "--promote", str(run_id), "--mode", "code")
    assert refused.returncode == 1
    assert "does not replace the code champion" in refused.stderr and "1e+06" in refused.stderr
    assert run_cli("results", "--promote", str(run_id), "--mode", "ask").returncode == 0
    forced = run_cli("results", "--promote", str(run_id), "--mode", "code", "--force")
    assert forced.returncode == 0
    table = run_cli("results", "--champions").stdout
    assert f"ask        run {run_id}: benchy" in table and "forced" in table
    assert "architect  –" in table


def test_a_bad_bench_rule_is_one_line_with_file_and_line(isolated_dirs):
    path = isolated_dirs["config"] / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("bench:\n  rules:\n    code: {min_decode_tpss: 50}\n")
    result = run_cli("results")
    assert result.returncode == 2
    assert f"{path}:3: unknown setting bench.rules.code.min_decode_tpss" in result.stderr


async def open_bench_screen(pilot, app):
    """Select the served model, press b, and wait for the screen's first run to finish."""
    from test_tui_servers import names, select, wait_until

    from sparktop.ui.screens.bench import BenchScreen

    await wait_until(pilot, lambda: names(app).get("benchy") == "ready")
    select(app, "benchy")
    await pilot.press("b")
    await wait_until(pilot, lambda: isinstance(app.screen, BenchScreen))
    screen = app.screen
    await wait_until(pilot, lambda: not screen.running, timeout=120)
    return screen


async def test_bench_screen_runs_shows_progress_cancels_and_keeps_history(served):
    from conftest import make_app
    from test_tui_servers import wait_until

    from sparktop.ui.screens.bench import BenchScreen

    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_bench_screen(pilot, app)
        log = "\n".join(screen.query_one("#bench-log").lines)
        assert "warm-up" in log and "rep 3/3: TTFT" in log and "kept as run" in log
        assert "decode" in log and "(server" in log
        assert screen.query_one("#bench-history").row_count >= 1
        # run again with a long generation and cancel it with Esc
        screen.gen = 100000
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.running)
        await pilot.pause(1.0)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.running, timeout=30)
        assert "cancelled" in "\n".join(screen.query_one("#bench-log").lines)
        # the server notices the closed connection at its next token (on a loaded 2-core box
        # that can come a moment after the client has let go)
        await wait_until(pilot, lambda: idle(f"http://127.0.0.1:{served}"), timeout=5)
        await pilot.press("escape")
        assert not isinstance(app.screen, BenchScreen)


def test_overnight_queue_serves_each_model_benchmarks_and_summarises(llama_server, bench_gguf,
                                                                      isolated_dirs):  # fmt: skip
    entries = []
    for name in ("night-a", "night-b"):
        entry = tiny_entry(name, bench_gguf, free_port(), exclusive="big")
        entry["serve"]["context"] = 1024
        entries.append(entry)
    write_user_catalog(isolated_dirs["config"], entries)
    try:
        result = run_cli("bench", "--queue", "night-a", "night-b", "--prompt", "32", "--gen",
                         "32", "--reps", "1", "--quality", "--json", timeout=600)  # fmt: skip
        assert result.returncode == 0, result.stderr
        queue = json.loads(result.stdout)["queue"]
        assert [row["model"] for row in queue] == ["night-a", "night-b"]
        assert all(row["decode_tps"] > 0 and row["run_id"] for row in queue)
        # random weights: the quality smoke keeps the answers and calls them incoherent
        assert all(row["coherent"] is False for row in queue)
        status = json.loads(run_cli("status", "--json").stdout)
        assert [s["name"] for s in status["servers"]] == ["night-b"]  # the switch stopped a
        kept = json.loads(run_cli("results", "--export", "json").stdout)
        detail = json.loads(
            __import__("sqlite3").connect(isolated_dirs["data"] / "bench.sqlite3")
            .execute("SELECT detail FROM runs WHERE id = ?", (kept[0]["id"],)).fetchone()[0]
        )  # fmt: skip
        assert {q["mode"] for q in detail["quality"]} == {"ask", "code", "architect", "debug"}
        assert all("answer" in q for q in detail["quality"])
    finally:
        run_cli("stop", "night-b", timeout=60)


async def test_bench_screen_sweeps_llama_bench_compare_and_champions(served):
    from conftest import make_app
    from test_tui_servers import wait_until

    from sparktop.ui.screens.dialogs import TextScreen

    app = make_app("nogpu", watch_servers=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_bench_screen(pilot, app)
        screen.prompt, screen.gen, screen.reps = 64, 16, 2

        def log() -> str:
            return "\n".join(screen.query_one("#bench-log").lines)

        for key, expect in (("c", "8 streams"), ("d", "depth      0"), ("l", "llama-bench")):
            await pilot.press(key)
            await wait_until(pilot, lambda: not screen.running, timeout=120)
            assert expect in log(), log()
        await pilot.press("r")
        await wait_until(pilot, lambda: not screen.running, timeout=120)
        history = screen.query_one("#bench-history")
        assert history.row_count >= 2
        history.focus()
        history.move_cursor(row=0)
        await pilot.press("m")
        history.move_cursor(row=1)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
        text = app.screen.text
        assert "Decode" in text and "B against A" in text and "%" in text
        assert "decode_tps" not in text
        await pilot.press("escape")
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert "code" in app.screen.text and "--promote" in app.screen.text


def test_vllm_figures_come_only_from_a_window_that_counted_the_one_request():
    """vLLM's own figures are deltas of its /metrics around one bench request. A window in
    which another client's request also finished (or the counters went back: a restart)
    would mix in what is not the bench's, so it gives no server figures at all."""
    from sparktop.bench.api import ServerMetrics
    from sparktop.engines import VLLM, adapter

    def metrics(requests: float, ttft: float, prefill: float, decode: float,
                prompt: float, generated: float) -> dict[str, float]:  # fmt: skip
        return {
            "vllm:time_to_first_token_seconds_sum": ttft,
            "vllm:time_to_first_token_seconds_count": requests,
            "vllm:request_prefill_time_seconds_sum": prefill,
            "vllm:request_prefill_time_seconds_count": requests,
            "vllm:request_decode_time_seconds_sum": decode,
            "vllm:request_decode_time_seconds_count": requests,
            "vllm:prompt_tokens_total": prompt,
            "vllm:generation_tokens_total": generated,
        }

    server = ServerMetrics("http://127.0.0.1:9", adapter(VLLM).metrics)
    before = metrics(4, 0.4, 0.2, 4.0, 2048, 512)
    one = server.figures(before, metrics(5, 0.5, 0.25, 5.0, 2560, 640))
    assert one["server_ttft_s"] == pytest.approx(0.1)
    assert one["server_prompt_tps"] == pytest.approx(512 / 0.05)
    assert one["server_decode_tps"] == pytest.approx(127 / 1.0)
    two = server.figures(before, metrics(6, 0.7, 0.3, 6.0, 3072, 768))  # someone else's too
    assert set(two.values()) == {None}
    reset = server.figures(before, metrics(1, 0.1, 0.05, 1.0, 512, 128))  # restarted
    assert set(reset.values()) == {None}


def test_an_engine_that_refuses_the_cache_salt_is_asked_again_without_it():
    """The bench sends vLLM's `cache_salt`; an engine that refuses it by name (HTTP 400, as
    vLLM's older V0 engine does) is asked again without it instead of failing the run, and
    the run's later requests go without it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[bool] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.endswith("/completions"):
                seen.append("cache_salt" in body)
            if "cache_salt" in body:
                message = b'{"error": "Parameter \'cache_salt\' is not supported"}'
                self.send_response(400)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for word in ("a", "b", "c"):
                event = {"choices": [{"text": word, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")

        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        result = run_api_bench(base, "m", prompt_tokens=8, gen_tokens=3, repetitions=3,
                               warmup=True, timeout=10)  # fmt: skip
    finally:
        server.shutdown()
    assert [s.generated_tokens for s in result.samples] == [3, 3, 3]
    assert seen == [True, False, False, False, False]  # refused once, not once a request
