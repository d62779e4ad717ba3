"""Real Podman containers serving the tiny model with the real llama-server (issue 16).

The image `localhost/sparktop-llama:test` is built here from the venv's llama-server, with no
registry (tests/tools/podman_image.py). Podman runs with that tool's containers.conf (runc,
no default ulimits), set as CONTAINERS_CONF for each test only. Every container is named by
the test (sparktop-test-…, or sparktop-ENTRY for a catalog entry) and removed by that name in
a finally. The in-container server gets the suite's SPARKTOP_TEST_RUN, so the test scope sees
it and the rest of the suite never does. Skipped with the reason where Podman cannot run a
container here, failed instead when SPARKTOP_REQUIRE_PODMAN=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, run_cli, tiny_entry, wait_for, write_user_catalog
from test_servers_cli import port_is_free
from tools import podman_image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCOPE = "SPARKTOP_TEST_RUN"


@pytest.fixture(scope="module")
def podman_conf(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' containers.conf, once the image is built and Podman runs a container."""
    conf = podman_image.conf_file(tmp_path_factory.mktemp("podman"))
    env = podman_image.podman_env(conf)
    try:
        podman_image.build(Path(llama_server).resolve().parent, env)
        podman_image.check_runs(free_port(), env)
    except (podman_image.Unusable, OSError) as exc:
        if os.environ.get("SPARKTOP_REQUIRE_PODMAN") == "1":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    return conf


@pytest.fixture
def podman_env(podman_conf: Path, isolated_dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONTAINERS_CONF for this test's podman and sparktop commands (nothing global)."""
    monkeypatch.setenv("CONTAINERS_CONF", str(podman_conf))


@contextlib.contextmanager
def removed_after(name: str) -> Iterator[str]:
    """Remove the container the test named `name` when the block ends, however it ends."""
    try:
        yield name
    finally:
        podman_image.podman("rm", "-f", "-t", "0", name, check=False, env=dict(os.environ))


def running(name: str) -> bool:
    done = podman_image.podman("ps", "--format", "{{.Names}}", env=dict(os.environ))
    return name in done.stdout.split()


def rows(port: int) -> list[dict]:
    result = run_cli("status", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    return [s for s in json.loads(result.stdout)["servers"] if s["port"] == port]


def ready_row(port: int) -> dict:
    """The one row at port once it is ready (the model loads in a second or two)."""

    def ready() -> dict | None:
        found = rows(port)
        assert len(found) <= 1, found
        return found[0] if found and found[0]["health"] == "ready" else None

    return wait_for(ready, timeout=60, interval=0.5)


@pytest.fixture
def tinybox(podman_env, tiny_gguf: Path, isolated_dirs, no_orphans) -> Iterator[tuple[str, int]]:
    """`sparktop serve tinybox`, a catalog entry that runs the tiny model in the image:
    (its container's name, its port); the container is removed by that name afterwards."""
    port = free_port()
    entry = tiny_entry("tinybox", tiny_gguf, port, env={SCOPE: os.environ[SCOPE]},
                       container={"image": podman_image.IMAGE, "runtime": "podman"})  # fmt: skip
    write_user_catalog(isolated_dirs["config"], [entry])
    with removed_after("sparktop-tinybox") as name:
        served = run_cli("serve", "tinybox", timeout=120)
        assert served.returncode == 0, served.stdout + served.stderr
        assert "ready" in served.stdout and running(name)
        yield name, port


def stopped_by_podman(target: str, name: str, port: int, *flags: str) -> str:
    """`sparktop stop TARGET --yes FLAGS` ran `podman stop NAME`: the container is gone and
    the port free; returns what it printed."""
    stopped = run_cli("stop", target, "--yes", *flags, timeout=90)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"podman stop {name}" in stopped.stdout
    assert not running(name)
    wait_for(lambda: port_is_free(port), timeout=10)
    assert rows(port) == []
    return stopped.stdout


def test_an_outside_podman_container_is_found_reached_tested_and_stopped_by_podman(
    podman_env, tiny_gguf: Path
) -> None:
    port = free_port()
    models = str(tiny_gguf.parent)
    with removed_after("sparktop-test-outside") as name:
        podman_image.podman(
            "run", "-d", "--name", name, "-e", f"{SCOPE}={os.environ[SCOPE]}",
            "-p", f"127.0.0.1:{port}:{port}", "-v", f"{models}:{models}:ro", podman_image.IMAGE,
            "llama-server", "-m", str(tiny_gguf), "--host", "0.0.0.0", "--port", str(port),
            "-a", "tiny", "-c", "512", "--parallel", "1", env=dict(os.environ),
        )  # fmt: skip
        row = ready_row(port)
        box = row["container"]
        assert row["engine"] == "llama.cpp" and row["models"] == ["tiny"]
        assert box["runtime"] == "podman" and box["name"] == name and len(box["id"]) == 64
        assert row["managed"] is False
        # reached through Podman's published port (its configuration in libpod's database)
        assert row["reachable_via"] == f":{port} in container → :{port} on host"
        assert row["url"] == f"http://127.0.0.1:{port}"

        tested = run_cli("test", "tiny", timeout=120)
        assert "PASS  /health" in tested.stdout and "PASS  /v1/models" in tested.stdout
        assert "PASS  /v1/chat/completions" in tested.stdout
        assert "FAIL  coherence" in tested.stdout  # random weights babble

        logs = run_cli("logs", "tiny", "-n", "200")
        assert logs.returncode == 0, logs.stderr
        assert f"overlay-containers/{box['id']}/userdata/ctr.log" in logs.stdout
        assert "stderr" in logs.stdout and "llama_server" in logs.stdout  # k8s-file lines

        refused = run_cli("stop", "tiny", "--yes", timeout=60)
        assert refused.returncode != 0
        assert f"Stop it with: podman stop {name}" in refused.stderr
        assert "sends it no signal" in refused.stderr
        assert running(name) and rows(port)[0]["health"] == "ready"

        stopped_by_podman("tiny", name, port, "--runtime-stop")


def test_a_catalog_entry_served_in_podman_is_managed_readopted_and_stopped_by_name(
    tinybox: tuple[str, int],
) -> None:
    name, port = tinybox
    row = ready_row(port)  # a new sparktop process: re-adopted, one managed row
    assert row["managed"] is True and row["catalog_name"] == "tinybox"
    assert row["container"]["runtime"] == "podman" and row["container"]["name"] == name
    assert row["reachable_via"] == f":{port} in container → :{port} on host"
    client = row["pid"]
    argv = Path(f"/proc/{client}/cmdline").read_bytes().split(b"\0")
    assert argv[:2] == [b"podman", b"run"]  # the row's PID is sparktop's own client

    said = stopped_by_podman("tinybox", name, port)
    assert "port free" in said
    assert "SIGTERM" not in said  # podman stop ended the client too: nothing to signal
    wait_for(lambda: not Path(f"/proc/{client}").exists(), timeout=15)  # the client ended


def test_a_served_container_whose_podman_client_was_killed_stops_through_podman(
    tinybox: tuple[str, int],
) -> None:
    from sparktop.servers.registry import Registry

    name, port = tinybox
    (record,) = [r for r in Registry().load() if r.name == "tinybox"]
    assert record.container_name == name
    os.kill(record.pid, signal.SIGKILL)  # the `podman run` client sparktop started
    wait_for(lambda: not Path(f"/proc/{record.pid}").exists(), timeout=15)
    assert running(name)  # conmon keeps the container

    row = ready_row(port)
    assert row["managed"] is True and row["catalog_name"] == "tinybox"
    assert row["container"]["name"] == name and row["pid"] != record.pid

    assert "SIGTERM" not in stopped_by_podman("tinybox", name, port)  # nothing signalled


def test_published_ports_are_read_from_libpod_database_bytes(tmp_path: Path) -> None:
    """Without Podman: the configuration's JSON as it lies among a Bolt file's binary pages,
    another container's beside it; a port range counts out, tcp,udp counts as tcp."""
    from sparktop.servers.containers import podman_published
    from sparktop.servers.netns import Published

    mine, other = "a" * 64, "b" * 64

    def config(cid: str, mappings: list[dict]) -> bytes:
        spec = {"spec": {"process": {"args": ["llama-server"]}}, "id": cid, "name": "x"}
        return json.dumps({**spec, "newPortMappings": mappings}, separators=(",", ":")).encode()

    ports = [
        {"host_ip": "127.0.0.1", "container_port": 8000, "host_port": 30000, "range": 2,
         "protocol": "tcp,udp"},
        {"host_ip": "", "container_port": 9000, "host_port": 9100},
    ]  # fmt: skip
    db = tmp_path / "bolt_state.db"
    db.write_bytes(b"\x00\x01" * 300 + config(other, [{"container_port": 8000, "host_port": 1}])
                   + b"\xff\x00" * 50 + config(mine, ports) + b"\x00" * 100)  # fmt: skip
    assert podman_published(db, mine) == (
        Published("127.0.0.1", 30000, "", 8000, "tcp"),
        Published("127.0.0.1", 30001, "", 8001, "tcp"),
        Published("", 9100, "", 9000, "tcp"),
    )
    assert podman_published(db, "c" * 64) == ()
    assert podman_published(tmp_path / "absent.db", mine) == ()
