"""Run the server tests on a box that is serving a model of its own, and check it survived.

An outside llama-server (not started by the tests, served name `tiny` like the tests' own,
port 30000 like the catalog's) runs through the whole test session. Afterwards it must still
be the same process, answering /health and listing `tiny`: the tests looked only at their own
processes and never stopped, signalled or confused it.

    .venv/bin/python tests/tools/busy_box.py [pytest arguments]

Exit status: pytest's, or 1 when the outside server was touched, 2 when it could not start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

PORT = 30000
NAME = "tiny"
SERVER_TESTS = [
    "test_bench.py", "test_engines.py", "test_faces.py", "test_fleet.py", "test_procscan.py",
    "test_resilience.py", "test_rpc.py", "test_server_discovery.py", "test_servers_cli.py",
    "test_tui_servers.py",
]  # fmt: skip


def serving(pid: int) -> str | None:
    """None when the outside server is as it was started; else what is wrong with it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return f"process {pid} is gone"
    if state == "Z":
        return f"process {pid} has exited (zombie)"
    base = f"http://127.0.0.1:{PORT}"
    try:
        health = httpx.get(f"{base}/health", timeout=5)
        models = httpx.get(f"{base}/v1/models", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"port {PORT} does not answer: {exc}"
    ids = [m.get("id") for m in models.get("data", [])]
    if health.status_code != 200 or NAME not in ids:
        return f"port {PORT} answers /health {health.status_code}, models {ids}"
    return None


def start(llama_server: str, model: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SPARKTOP_TEST_RUN"}  # not the suite's
    argv = [llama_server, "-m", str(model), "--alias", NAME, "--host", "127.0.0.1",
            "--port", str(PORT), "-c", "512"]  # fmt: skip
    server = subprocess.Popen(
        argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        if serving(server.pid) is None:
            return server
        time.sleep(0.2)
    server.kill()
    server.wait()
    raise SystemExit(f"busy_box: the outside llama-server did not come up; see {log}")


def main(args: list[str]) -> int:
    from tinymodel import write_tiny_llama

    from sparktop.engines import find_llama_server
    from sparktop.servers.ports import port_free

    llama_server = find_llama_server()
    if llama_server is None:
        print("busy_box: no llama-server (run tests/tools/install_llama.py)", file=sys.stderr)
        return 2
    if not port_free("127.0.0.1", PORT):
        print(f"busy_box: port {PORT} is in use; the check needs it free", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="busy-box-") as tmp:
        model = write_tiny_llama(Path(tmp) / "outside" / "tiny-f32.gguf")
        server = start(llama_server, model, Path(tmp) / "outside.log")
        print(f"busy_box: outside llama-server pid {server.pid} serving {NAME!r} on :{PORT}")
        try:
            named = any(Path(arg.split("::")[0]).exists() for arg in args)  # tests chosen
            tests = [] if named else [str(TESTS / name) for name in SERVER_TESTS]
            code = subprocess.call([sys.executable, "-m", "pytest", *args, *tests])
            problem = serving(server.pid)
        finally:
            if server.poll() is None:  # ours, by PID
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    if problem:
        print(f"busy_box: FAILED, the outside server was touched: {problem}", file=sys.stderr)
        return 1
    print(f"busy_box: the outside server (pid {server.pid}) served {NAME!r} throughout")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
