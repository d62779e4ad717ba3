"""One suite, run for every engine adapter (as Harlequin runs its adapter_tests per backend):
launch forms, serve argv, metric names, fit overheads, programs and companion tools, polling
hooks; and that nothing outside the adapters branches on an engine's name."""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import FIXTURES, TESTS, start_outside, wait_for

from sparktop.bench.llama_bench import find_llama_bench
from sparktop.catalog.entry import Architecture, ModelEntry, ServeProfile
from sparktop.catalog.files import model_path
from sparktop.catalog.fit import GIB, estimate_need
from sparktop.engines import (
    ADAPTERS,
    CHILD,
    COMMAND,
    LLAMA_CPP,
    NO_METRICS,
    SERVER,
    SGLANG,
    VLLM,
    EngineAdapter,
    EngineError,
    EngineMemo,
    ServeRequest,
    adapter,
    classify,
)
from sparktop.engines.llama_rpc import find_rpc_server
from sparktop.servers import http
from sparktop.servers.metrics import first, parse, totals
from sparktop.servers.supervisor import ServeError, build_argv

SAMPLES = FIXTURES / "engine_samples"
SOURCE = TESTS.parent / "tui" / "sparktop"
ENGINES_DIR = SOURCE / "servers" / "engines"

PROGRAM = {
    LLAMA_CPP: "/opt/llama/build/bin/llama-server",
    VLLM: "/opt/venv/bin/vllm",
    SGLANG: "/opt/venv/bin/python3",
}
"""A program each engine could be configured with; its argv reads back through classify."""
METRICS_SAMPLE = {
    LLAMA_CPP: "llamacpp_metrics.txt",
    VLLM: "vllm_metrics.txt",
    SGLANG: "sglang_metrics.txt",
}
PREALLOCATES = {VLLM: ("--gpu-memory-utilization", 0.9), SGLANG: ("--mem-fraction-static", 0.88)}
"""Engines that claim a pool fraction at start: the flag, and its default."""
COMMAND_TEMPLATE = (
    "my-server", "--model", "{model}", "--name={served_name}", "--host", "{host}",
    "--port", "{port}", "--ctx", "{context}",
)  # fmt: skip
SLOTS = [
    {"id": 0, "n_ctx": 4096, "is_processing": True, "next_token": [{"n_decoded": 1024}]},
    {"id": 1, "n_ctx": 4096, "is_processing": False, "next_token": [{"n_decoded": 0}]},
]
"""llama-server's /slots, shortened to what sparktop reads."""

each_adapter = pytest.mark.parametrize("engine", list(ADAPTERS.values()), ids=list(ADAPTERS))


def launch_examples() -> list[dict]:
    examples = json.loads((SAMPLES / "cmdlines.json").read_text())
    return examples.get("examples", []) if isinstance(examples, dict) else examples


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def serve(engine: EngineAdapter, **overrides) -> list[str]:
    request = ServeRequest(
        binary=tuple(engine.binary({engine.name: [PROGRAM.get(engine.name, "/bin/true")]})),
        model="/models/tiny.gguf",
        served_name="tiny-chat",
        host="127.0.0.1",
        port=18123,
        context=4096,
        template=COMMAND_TEMPLATE if engine.takes_argv else (),
    )
    return engine.serve_argv(replace(request, **overrides))


# -- launch forms -------------------------------------------------------------------------


@each_adapter
def test_classify_knows_its_launch_forms_and_no_one_elses(engine: EngineAdapter) -> None:
    own = 0
    for example in launch_examples():
        argv, role = example["argv"], example.get("role", SERVER)
        launch = engine.classify(argv)
        if example["engine"] != engine.name:
            # another engine's server, child or client is never taken for one of ours
            assert launch is None, (engine.name, argv)
            continue
        own += 1
        if role == "client":
            assert launch is None, argv
        elif role == CHILD:
            # a llama.cpp router's per-model llama-server looks like any llama-server
            assert launch is None or launch.role in (CHILD, SERVER), argv
        else:
            assert launch is not None and launch.engine == engine.name, argv
            assert launch.role == SERVER and launch.port == example["port"], argv
        assert launch is None or classify(argv) == launch  # the registry asks the same
    assert own > 0 or not engine.programs  # every engine with a program has samples


# -- serve argv ---------------------------------------------------------------------------


@each_adapter
def test_serve_argv_names_model_name_host_port_and_context(engine: EngineAdapter) -> None:
    argv = serve(engine, args=("--extra-flag", "7") if not engine.takes_argv else ())
    for value in ("/models/tiny.gguf", "127.0.0.1", "18123", "4096"):
        assert value in argv, (value, argv)
    assert any("tiny-chat" in a for a in argv)
    if engine.takes_argv:
        assert argv == ["my-server", "--model", "/models/tiny.gguf", "--name=tiny-chat",
                        "--host", "127.0.0.1", "--port", "18123", "--ctx", "4096"]  # fmt: skip
        return
    assert argv[: len(engine.binary({engine.name: [PROGRAM[engine.name]]}))] == [
        PROGRAM[engine.name]
    ]
    assert argv[-2:] == ["--extra-flag", "7"]  # the catalog's own args come last
    launch = engine.classify(argv)  # what discovery will read back from the process table
    assert launch is not None and launch.engine == engine.name
    assert (launch.port, launch.served_name) == (18123, "tiny-chat")
    assert engine.context_of(argv, None) == 4096


@each_adapter
def test_a_context_in_the_catalog_args_is_not_given_twice(engine: EngineAdapter) -> None:
    if not engine.context_flags:
        pytest.skip(f"{engine.name} has no context argument")
    argv = serve(engine, args=(engine.context_flags[-1], "8192"))
    assert "4096" not in argv and argv[-2:] == [engine.context_flags[-1], "8192"]
    assert engine.context_of(argv, None) == 8192


@each_adapter
def test_split_serving_names_its_workers_only_where_the_engine_splits(engine) -> None:
    argv = serve(engine, rpc=("10.0.0.2:50052", "10.0.0.3:50052"))
    if engine.splits_over_rpc:
        assert engine.split_endpoints(argv) == ("10.0.0.2:50052", "10.0.0.3:50052")
        given = serve(engine, args=("--rpc", "10.0.0.9:1"), rpc=("10.0.0.2:50052",))
        assert engine.split_endpoints(given) == ("10.0.0.9:1",)  # the catalog's own wins
    else:
        assert engine.split_endpoints(argv) == ()
        assert not any("50052" in a for a in argv)


@each_adapter
def test_a_model_neither_on_disk_nor_on_the_hub_is_refused_in_one_line(engine, tmp_path):
    profile = ServeProfile("m", 18124, argv=COMMAND_TEMPLATE if engine.takes_argv else ())
    entry = ModelEntry("m", engine.name, profile, local_dir=tmp_path / "absent")
    configured = {engine.name: [PROGRAM.get(engine.name, "/bin/true")]}
    if engine.takes_argv:  # the command is the catalog's own: {model} is just a path
        assert build_argv(entry, configured)[:3] == ["my-server", "--model", str(entry.local_dir)]
        return
    with pytest.raises(ServeError) as caught:
        build_argv(entry, configured)
    assert str(caught.value).startswith("model m: ") and "\n" not in str(caught.value)


VLLM_SERVER = "vllm.entrypoints.openai.api_server"


@pytest.mark.parametrize(
    ("configured", "launch"),
    [
        (["/opt/venv/bin/vllm"], ["/opt/venv/bin/vllm", "serve", "/models/hf"]),
        (["/opt/venv/bin/python", "-m", VLLM_SERVER],
         ["/opt/venv/bin/python", "-m", VLLM_SERVER, "--model", "/models/hf"]),
        (["/opt/venv/bin/python3"],
         ["/opt/venv/bin/python3", "-m", VLLM_SERVER, "--model", "/models/hf"]),
    ],
    ids=["vllm-program", "python-m-api-server", "bare-python"],
)  # fmt: skip
def test_vllm_launch_form_fits_the_configured_program(configured, launch) -> None:
    engine = adapter(VLLM)
    argv = serve(engine, binary=tuple(engine.binary({VLLM: configured})), model="/models/hf")
    assert argv[: len(launch)] == launch
    found = engine.classify(argv)  # discovery reads the same server back
    assert found is not None and found.role == SERVER
    assert (found.model, found.port, found.served_name) == ("/models/hf", 18123, "tiny-chat")


# -- metrics ------------------------------------------------------------------------------


@each_adapter
def test_metric_names_are_the_ones_the_engine_exports(engine: EngineAdapter) -> None:
    if engine.name not in METRICS_SAMPLE:
        assert engine.metrics == NO_METRICS
        return
    values = totals(parse((SAMPLES / METRICS_SAMPLE[engine.name]).read_text()))
    names = engine.metrics
    for quantity in ("running", "waiting", "prompt_tokens", "generated_tokens"):
        assert first(values, *getattr(names, quantity)) is not None, quantity
    kv = first(values, *names.kv_usage)
    # llama.cpp dropped its KV gauge from /metrics: its adapter reads /slots instead
    assert kv is not None or type(engine).extra_facts is not EngineAdapter.extra_facts
    if kv is not None:
        assert 0.0 <= kv * names.kv_usage_scale <= 1.0


@pytest.fixture
def llama_like_server():
    """A loopback server answering /props and /slots as llama-server does; yields it and
    the paths it was asked."""
    props = json.loads((SAMPLES / "api_responses.json").read_text())["llamacpp_props"]
    answers = {"/props": props, "/slots": SLOTS}
    asked: list[str] = []

    class Answers(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(answers.get(self.path, {})).encode()
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, asked
    finally:
        server.shutdown()
        server.server_close()


@each_adapter
def test_polling_hooks_ask_only_what_the_engine_answers(engine, llama_like_server) -> None:
    server, asked = llama_like_server
    conn = http.Connection("127.0.0.1", server.server_address[1])
    try:
        context = engine.context_from_server(conn, 2.0)
        memo = EngineMemo()
        facts = engine.extra_facts(conn, 2.0, facts={"running": None}, memo=memo, now=100.0,
                                   metrics_supported=False)  # fmt: skip
    finally:
        conn.close()
    if engine.name != LLAMA_CPP:
        assert (context, facts, asked) == (None, {}, [])
        return
    assert context == 4096  # /props default_generation_settings.n_ctx
    assert facts == {"running": 1.0, "kv_usage": pytest.approx(1024 / 8192)}
    assert asked == ["/props", "/slots"] and memo.asked_at == 100.0


# -- fit ----------------------------------------------------------------------------------


@each_adapter
def test_fit_counts_the_engines_overhead_and_preallocation(engine: EngineAdapter) -> None:
    profile = ServeProfile("m", 18125, context=8192)
    arch = Architecture(layers=32, kv_heads=8, head_dim=128)
    entry = ModelEntry("m", engine.name, profile, size_bytes=8 * GIB, architecture=arch)
    pool = 100 * GIB
    need = estimate_need(entry, pool)
    assert need.overhead_bytes == engine.overhead_bytes > 0
    assert need.kv_bytes == 2 * 32 * 8 * 128 * 8192 * 2  # f16 from the catalog architecture
    if engine.name not in PREALLOCATES:
        assert need.preallocated_bytes is None
        assert need.total_bytes == 8 * GIB + need.kv_bytes + engine.overhead_bytes
        return
    flag, default = PREALLOCATES[engine.name]
    assert need.preallocated_bytes == int(pool * default) == need.total_bytes
    smaller = ModelEntry("m", engine.name, ServeProfile("m", 18125, args=(flag, "0.5")),
                         size_bytes=8 * GIB)  # fmt: skip
    assert estimate_need(smaller, pool).preallocated_bytes == pool // 2


@pytest.mark.parametrize(
    ("args", "env", "kv", "source"),
    [
        ((), {"VLLM_CPU_KVCACHE_SPACE": "4"}, 4 * GIB, "VLLM_CPU_KVCACHE_SPACE=4 (GiB)"),
        (("--kv-cache-memory-bytes", "3G"), {}, 3 * GIB, "--kv-cache-memory-bytes 3G"),
        (("--kv-cache-memory-bytes", "2g"), {}, 2 * 10**9, "--kv-cache-memory-bytes 2g"),
        (("--kv-cache-memory-bytes", "2g"), {"VLLM_CPU_KVCACHE_SPACE": "4"}, 4 * GIB,
         "VLLM_CPU_KVCACHE_SPACE=4 (GiB)"),
    ],
    ids=["cpu-env", "flag-binary", "flag-decimal", "cpu-env-overrides-flag"],
)  # fmt: skip
def test_fit_counts_the_kv_cache_vllm_is_told_not_its_pool_fraction(args, env, kv, source):
    """vLLM told its KV cache in bytes (the CPU build's VLLM_CPU_KVCACHE_SPACE, or
    --kv-cache-memory-bytes) allocates that, not 0.9 of the pool: weights + it + runtime."""
    profile = ServeProfile("m", 18125, context=8192, args=args, env=tuple(env.items()))
    arch = Architecture(layers=32, kv_heads=8, head_dim=128)
    entry = ModelEntry("m", VLLM, profile, size_bytes=8 * GIB, architecture=arch)
    need = estimate_need(entry, 100 * GIB)
    assert need.preallocated_bytes is None
    assert need.kv_bytes == kv and source in need.kv_source
    assert need.total_bytes == 8 * GIB + kv + adapter(VLLM).overhead_bytes
    unset = ModelEntry("m", VLLM, ServeProfile("m", 18125, env=(("VLLM_CPU_KVCACHE_SPACE", "0"),)),
                       size_bytes=8 * GIB)  # fmt: skip
    assert estimate_need(unset, 100 * GIB).preallocated_bytes == 90 * GIB  # 0: vLLM sizes it
    for bad in ("inf", "1e400", "-3G", "lots"):  # not a size: the pool fraction, no crash
        odd = ModelEntry("m", VLLM, ServeProfile("m", 18125, args=("--kv-cache-memory-bytes", bad)),
                         size_bytes=8 * GIB)  # fmt: skip
        assert estimate_need(odd, 100 * GIB).preallocated_bytes == 90 * GIB, bad


@each_adapter
def test_fit_reads_context_and_cache_type_from_the_engines_own_flags(engine) -> None:
    if not engine.context_flags:
        pytest.skip(f"{engine.name} has no context argument")
    args = (engine.context_flags[0], "2048")
    k_flags, v_flags = engine.cache_type_flags
    if k_flags:
        args += (k_flags[0], "q8_0", v_flags[0], "q8_0")
    arch = Architecture(layers=10, kv_heads=4, head_dim=64)
    entry = ModelEntry("m", engine.name, ServeProfile("m", 18126, context=99, args=args),
                       size_bytes=GIB, architecture=arch)  # fmt: skip
    need = estimate_need(entry, 100 * GIB)
    per_elem = 34 / 32 if k_flags else 2.0
    assert need.context == 2048
    assert need.kv_bytes == int(2 * 10 * 4 * 64 * 2048 * per_elem)


@each_adapter
def test_the_model_path_is_what_the_engine_loads(engine: EngineAdapter, tmp_path: Path) -> None:
    (tmp_path / "mmproj-tiny.gguf").write_bytes(b"x")
    (tmp_path / "tiny-00001-of-00002.gguf").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    entry = ModelEntry("m", engine.name, ServeProfile("m", 18127), local_dir=tmp_path)
    path = model_path(entry)
    if engine.kv_shape_file(tmp_path / "x.gguf") is not None:  # a GGUF engine: one file
        assert path == tmp_path / "tiny-00001-of-00002.gguf"
    else:  # the model directory
        assert path == tmp_path
    assert model_path(ModelEntry("m", engine.name, ServeProfile("m", 1))) is None


# -- programs and companion tools ---------------------------------------------------------


@each_adapter
def test_the_configured_program_is_used_as_given(engine: EngineAdapter) -> None:
    if not engine.configurable:
        assert engine.binary({engine.name: ["/elsewhere/x"]}) == []
        return
    prefix = ["/usr/bin/env", "CUDA_VISIBLE_DEVICES=0", PROGRAM[engine.name]]
    assert engine.binary({engine.name: prefix}) == prefix


@each_adapter
def test_a_missing_program_is_one_line_naming_the_config_key(engine, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(type(engine), "locate", lambda self: None)
    if not engine.configurable:
        assert engine.binary({}) == []
        return
    with pytest.raises(EngineError) as caught:
        engine.binary({})
    assert "\n" not in str(caught.value) and "config.yaml" in str(caught.value)


@each_adapter
def test_companion_tools_are_looked_for_beside_the_configured_program(engine, tmp_path) -> None:
    if not engine.configurable:
        pytest.skip(f"{engine.name} has no program of its own")
    program = executable(tmp_path / "build" / "bin" / Path(PROGRAM[engine.name]).name)
    tool = executable(tmp_path / "build" / "bin" / "some-tool")
    assert engine.companion(("some-tool",), configured={engine.name: [str(program)]}) == str(tool)
    # through a link to the build's binary, the tool sits beside the real file
    link = tmp_path / "links" / program.name
    link.parent.mkdir()
    link.symlink_to(program)
    assert engine.companion(("some-tool",), configured={engine.name: [str(link)]}) == str(tool)


def test_llama_bench_is_found_beside_the_configured_llama_server(tmp_path, monkeypatch) -> None:
    on_path = executable(tmp_path / "path" / "llama-bench")
    monkeypatch.setenv("PATH", str(on_path.parent))
    server = executable(tmp_path / "llama" / "llama-server")
    bench = executable(tmp_path / "llama" / "llama-bench")
    rpc = executable(tmp_path / "llama" / "ggml-rpc-server")
    assert find_llama_bench({LLAMA_CPP: [str(server)]}) == str(bench)  # before PATH
    assert find_rpc_server({LLAMA_CPP: [str(server)]}) == str(rpc)
    assert find_llama_bench() == str(on_path)  # nothing configured: PATH


def test_llama_bench_is_found_beside_the_running_servers_own_binary(
    tmp_path, monkeypatch, no_orphans
) -> None:
    """The server's /proc/PID/exe names its build, wherever PATH and config point."""
    sleep = shutil.which("sleep")
    assert sleep is not None
    build = tmp_path / "build" / "bin"
    build.mkdir(parents=True)
    server = build / "llama-server"
    shutil.copy2(Path(sleep).resolve(), server)  # a real executable, under the server's name
    bench = executable(build / "llama-bench")
    other = executable(tmp_path / "path" / "llama-bench")
    monkeypatch.setenv("PATH", str(other.parent))
    proc = start_outside([str(server), "30"], no_orphans)
    wait_for(lambda: Path(f"/proc/{proc.pid}/exe").exists(), timeout=10)
    assert find_llama_bench(server_pid=proc.pid) == str(bench)
    assert find_llama_bench({LLAMA_CPP: ["/nowhere/llama-server"]}, proc.pid) == str(bench)
    assert find_llama_bench() == str(other)
    proc.kill()
    proc.wait(timeout=10)


# -- the registry -------------------------------------------------------------------------


def test_every_engine_has_one_adapter_and_unknown_names_get_the_generic_one() -> None:
    assert list(ADAPTERS) == [LLAMA_CPP, VLLM, SGLANG, COMMAND]
    assert all(adapter(name).name == name for name in ADAPTERS)
    assert adapter("some-engine-of-the-future") is ADAPTERS[COMMAND]
    assert [n for n, a in ADAPTERS.items() if a.splits_over_rpc] == [LLAMA_CPP]
    assert [n for n, a in ADAPTERS.items() if a.takes_argv] == [COMMAND]


NAMES = "|".join(re.escape(n) for n in ADAPTERS)
KEYED = "|".join(re.escape(n) for n in ADAPTERS if n != COMMAND)
"""Names looked up as keys ("command" is also a key of other mappings: config, argparse)."""
COMPARISONS = (
    re.compile(rf"""(==|!=)\s*["']({NAMES})["']"""),
    re.compile(rf"""["']({NAMES})["']\s*(==|!=)"""),
    re.compile(rf"""\bin\s*[(\[{{]\s*["']({NAMES})["']"""),
    re.compile(r"""\bengine\s*(==|!=)"""),
    re.compile(r"""\bengine\s+(not\s+)?in\s*[(\[{]"""),
    re.compile(r"""(==|!=)\s*[\w.]*\bengine\b(?!\w)"""),
    re.compile(rf"""(\.get\(|\[)\s*["']({KEYED})["']"""),  # engines.get("llama.cpp")
)


def test_no_module_outside_the_adapters_branches_on_an_engine_name() -> None:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if ENGINES_DIR in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in COMPARISONS):
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    assert not found, "ask sparktop.engines.adapter(name) instead:\n" + "\n".join(found)
