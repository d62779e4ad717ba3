"""Servers in containers and pods: reached where they listen, named, and left alone.

A container is made here with the kernel's own tools (no runtime): a network namespace with a
veth pair on private addresses, a PID namespace, and a real llama-server inside. A small TCP
forwarder with docker-proxy's command line publishes its port on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FIXTURES, free_port, run_cli, wait_for

from sparktop.servers.containers import container_of, parse_cgroup
from sparktop.servers.netns import (
    Published,
    namespace_addresses,
    published_from_argv,
    reach,
)

FORWARDER = '''#!{python}
"""Stands in for Docker's docker-proxy: same command line, forwards one TCP port."""
import socket, sys, threading

flags = dict(zip(sys.argv[1::2], sys.argv[2::2]))
target = (flags["-container-ip"], int(flags["-container-port"]))
listener = socket.create_server((flags["-host-ip"], int(flags["-host-port"])))

def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

while True:
    client, _ = listener.accept()
    try:
        upstream = socket.create_connection(target, timeout=5)
    except OSError:
        client.close()
        continue
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
'''


# -- units: the command line, the namespace's addresses, the choice -------------------------

DOCKER_PROXY = (
    "/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "30000",
    "-container-ip", "172.17.0.2", "-container-port", "8000", "-use-listen-fd",
)  # fmt: skip

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 172.17.0.0/16 2 0 2
        |-- 172.17.0.2
           /32 host LOCAL
"""


def test_docker_proxy_command_line_reads_as_a_published_port() -> None:
    assert published_from_argv(DOCKER_PROXY) == Published("0.0.0.0", 30000, "172.17.0.2", 8000)
    python_form = (sys.executable, "/tmp/bin/docker-proxy", *DOCKER_PROXY[1:])
    assert published_from_argv(python_form) == published_from_argv(DOCKER_PROXY)
    assert published_from_argv(("docker-proxy", "-proto", "tcp")) is None
    assert published_from_argv(("llama-server", "--port", "8000")) is None


def test_namespace_addresses_leave_out_loopback(tmp_path: Path) -> None:
    net = tmp_path / "42" / "net"
    net.mkdir(parents=True)
    (net / "fib_trie").write_text(FIB_TRIE)
    (net / "if_inet6").write_text(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000042acfffe110002 02 40 20 80     eth0\n"
        "fd000000000000000000000000000017 02 40 00 80     eth0\n"
    )
    assert namespace_addresses(tmp_path, 42) == ["172.17.0.2", "fd00::17"]


def test_reach_prefers_the_published_port_then_says_why_not() -> None:
    published = [Published("0.0.0.0", 30000, "172.17.0.2", 8000)]
    via = reach(4026532000, ("0.0.0.0", 8000), ["172.17.0.2"], published)
    assert (via.host, via.port) == ("127.0.0.1", 30000)
    assert via.text == ":8000 in container → :30000 on host"
    other = reach(4026532000, ("0.0.0.0", 8000), ["172.17.0.3"], published)
    assert other.port == 8000  # that publisher forwards to another container
    inside = reach(4026532000, ("127.0.0.1", 8000), ["172.17.0.2"], [])
    assert inside.host is None
    assert inside.text == (
        "in network namespace net:[4026532000], no published port, "
        "listens on 127.0.0.1 inside only: not reachable from here"
    )
    nothing = reach(4026532000, ("0.0.0.0", 8000), [], [])
    assert nothing.host is None and "no address of it readable" in nothing.text


# -- what it runs in: the cgroup path, and the runtime's files ----------------------------

CID = "4f1c9a7e2b3d5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
POD_UID = "0b8f2f5e-1c2d-4e3f-9a0b-6c7d8e9f0a1b"


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"12:pids:/docker/{CID}\n0::/docker/{CID}", ("docker", CID, None)),
        (f"0::/system.slice/docker-{CID}.scope", ("docker", CID, None)),
        (f"0::/machine.slice/libpod-{CID}.scope/container", ("podman", CID, None)),
        (f"0::/machine.slice/libpod-conmon-{CID}.scope", None),
        (
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
            f"{POD_UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope",
            ("containerd", CID, POD_UID),
        ),
        (f"0::/kubepods/besteffort/pod{POD_UID}/crio-{CID}.scope", ("cri-o", CID, POD_UID)),
        (f"0::/kubepods/burstable/pod{POD_UID}/{CID}", ("kubernetes", CID, POD_UID)),
        ("0::/user.slice/user-1000.slice/session-2.scope", None),
        ("4:memory:/process_api/cf14b9a41f27f4f8e66551c37ad0b4b1\n0::/", None),
    ],
)
def test_cgroup_path_names_the_runtime(cgroup: str, expected: tuple | None) -> None:
    assert parse_cgroup(cgroup) == expected


def test_pod_is_named_from_the_kubelet_logs() -> None:
    node = FIXTURES / "talos"
    box = container_of(node / "proc", 7001, node)
    assert box is not None
    assert (box.info.runtime, box.info.id, box.info.name, box.info.pod) == (
        "kubernetes", CID, "vllm", "ai/vllm-0",
    )  # fmt: skip
    assert box.log_path == str(node / f"var/log/pods/ai_vllm-0_{POD_UID}/vllm/0.log")
    assert box.stop_command == "kubectl delete pod -n ai vllm-0"
    assert container_of(node / "proc", 1, node) is None


def node_env(**extra: str) -> dict[str, str]:
    node = FIXTURES / "talos"
    return {
        **os.environ, "SPARKTOP_PROC_ROOT": str(node / "proc"), "SPARKTOP_ROOT": str(node),
        "SPARKTOP_SYS_ROOT": str(node / "sys"), "SPARKTOP_DEV_ROOT": str(node / "dev"),
        "COLUMNS": "200", **extra,
    }  # fmt: skip


def test_status_names_the_pod_a_server_runs_in() -> None:
    result = run_cli("status", "--json", env=node_env())
    assert result.returncode == 0, result.stderr
    (server,) = json.loads(result.stdout)["servers"]
    assert server["name"] == "qwen-pod"
    assert server["container"] == {
        "runtime": "kubernetes", "id": CID, "name": "vllm", "pod": "ai/vllm-0",
    }  # fmt: skip
    text = run_cli("status", env=node_env())
    assert text.returncode == 0, text.stderr
    header = next(line for line in text.stdout.splitlines() if "NAME" in line)
    assert "CONTAINER" in header.split()
    assert "k8s ai/vllm-0:vllm" in text.stdout


def test_container_column_is_hidden_without_containers() -> None:
    from sparktop.servers.rows import COLUMNS, columns_for
    from sparktop.snapshot import ContainerInfo, ServerInfo

    plain = ServerInfo(name="a", engine="llama.cpp", pid=1, port=8000)
    assert columns_for([plain]) == COLUMNS
    boxed = ServerInfo(name="b", engine="vllm", pid=2, port=8001,
                       container=ContainerInfo("docker", CID, "vllm-b"))  # fmt: skip
    assert columns_for([plain, boxed])[2] == "CONTAINER"


# -- a real server in a namespace of its own ---------------------------------------------


@dataclass
class Box:
    """A network namespace with a veth pair: the host side .1, the namespace side .2."""

    name: str
    host_ip: str
    ns_ip: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    tag = os.getpid() % 100000
    name, outer, inner = f"st16-{tag}", f"st16h{tag}", f"st16n{tag}"
    net = f"10.213.{tag % 250}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = getattr(exc, "stderr", b"") or str(exc).encode()
        pytest.skip(f"cannot make a network namespace here (ip netns add: {reason.decode()})")
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", name)
        _ip("addr", "add", f"{net}.1/30", "dev", outer)
        _ip("link", "set", outer, "up")
        for args in (
            ("addr", "add", f"{net}.2/30", "dev", inner),
            ("link", "set", inner, "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", name, "ip", *args)
        yield Box(name, f"{net}.1", f"{net}.2")
    finally:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            _ip("link", "del", outer)
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            _ip("netns", "del", name)


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _end(popen: subprocess.Popen) -> None:
    if popen.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(timeout=10)


@dataclass
class Inside:
    box: Box
    port: int
    popen: subprocess.Popen
    container_id: str | None
    """The Docker-like cgroup it was put in; None where no cgroup hierarchy is writable."""


DOCKER_ID = "d0c4e7" + "5" * 52 + "a1b2c3"


def _docker_cgroup() -> tuple[Path, Path | None] | None:
    """A cgroup named like Docker's (HIERARCHY/docker/ID), made here; None: none writable."""
    for hierarchy in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        parent = Path(hierarchy) / "docker"
        made = None if parent.exists() else parent
        try:
            (parent / DOCKER_ID).mkdir(parents=True)
        except OSError:
            continue
        return parent / DOCKER_ID, made
    return None


@pytest.fixture(scope="module")
def inside(box: Box, llama_server: str, tiny_gguf: Path) -> Iterator[Inside]:
    """llama-server 'in-box' in the namespace (and a PID namespace of its own), on 0.0.0.0,
    in a cgroup named like a Docker container's where one can be made."""
    port = free_port()
    cgroup = _docker_cgroup()
    enter = []
    if cgroup is not None:
        enter = ["sh", "-c", f'echo $$ > {cgroup[0]}/cgroup.procs && exec "$@"', "sh"]
    popen = _start(
        [*enter, "ip", "netns", "exec", box.name, "unshare", "--pid", "--fork", "--mount-proc",
         llama_server, "-m", str(tiny_gguf), "--host", "0.0.0.0", "--port", str(port),
         "--alias", "in-box", "-c", "256"]
    )  # fmt: skip
    try:
        yield Inside(box, port, popen, DOCKER_ID if cgroup else None)
    finally:
        _end(popen)
        if cgroup is not None:
            for folder in (cgroup[0], cgroup[1]):
                if folder is not None:
                    wait_for(lambda f=folder: _rmdir(f), 10)


def _rmdir(folder: Path) -> bool:
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def status_server(name: str) -> dict | None:
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return next((s for s in json.loads(result.stdout)["servers"] if s["name"] == name), None)


def ready(name: str) -> dict:
    return wait_for(lambda: (s := status_server(name)) and s["health"] == "ready" and s, 60)


@pytest.fixture
def forwarder(inside: Inside, tmp_path: Path) -> Iterator[int]:
    """docker-proxy publishing the server's port on the host; yields the host port."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-proxy"
    script.write_text(FORWARDER.replace("{python}", sys.executable))
    script.chmod(0o755)
    host_port = free_port()
    popen = _start(
        [str(script), "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", str(host_port),
         "-container-ip", inside.box.ns_ip, "-container-port", str(inside.port)]
    )  # fmt: skip
    try:
        yield host_port
    finally:
        _end(popen)


@pytest.mark.slow
def test_server_in_a_namespace_is_reached_at_its_own_address(inside: Inside) -> None:
    server = ready("in-box")
    assert server["models"] == ["in-box"]
    assert (server["host"], server["port"]) == (inside.box.ns_ip, inside.port)
    assert server["url"] == f"http://{inside.box.ns_ip}:{inside.port}"
    assert server["reachable_via"].startswith(f":{inside.port} in ")
    assert server["reachable_via"].endswith(f"→ {inside.box.ns_ip}:{inside.port} (its own address)")
    if inside.container_id is None:
        assert server["container"] is None
        assert server["reachable_via"].startswith(f":{inside.port} in its network namespace")
    else:
        assert server["container"] == {
            "runtime": "docker", "id": inside.container_id, "name": None, "pod": None,
        }  # fmt: skip
        assert server["reachable_via"].startswith(f":{inside.port} in container →")


@pytest.mark.slow
def test_server_in_a_namespace_is_reached_through_its_published_port(
    inside: Inside, forwarder: int
) -> None:
    server = wait_for(lambda: (s := ready("in-box")) and s["port"] == forwarder and s, 60)
    assert server["url"] == f"http://127.0.0.1:{forwarder}"
    assert server["reachable_via"].endswith(f"→ :{forwarder} on host")
    assert server["reachable_via"].startswith(f":{inside.port} in ")
    text = run_cli("status", env={**os.environ, "COLUMNS": "160"})
    assert text.returncode == 0, text.stderr
    assert f"{inside.port}→{forwarder}" in text.stdout
    assert server["reachable_via"] in " ".join(text.stdout.split())


@pytest.mark.slow
def test_server_listening_on_loopback_inside_says_why_it_cannot_be_reached(
    box: Box, llama_server: str, tiny_gguf: Path
) -> None:
    port = free_port()
    popen = _start(
        ["ip", "netns", "exec", box.name, llama_server, "-m", str(tiny_gguf),
         "--host", "127.0.0.1", "--port", str(port), "--alias", "shut-in", "-c", "256"]
    )  # fmt: skip
    try:
        server = wait_for(lambda: (s := status_server("shut-in")) and s["reachable_via"] and s, 60)
        assert server["health"] == "not responding"
        assert "no published port, listens on 127.0.0.1 inside only" in server["reachable_via"]
        assert server["health_detail"] == server["reachable_via"]
    finally:
        _end(popen)


# -- stop and logs respect ownership -------------------------------------------------------


def test_stop_refuses_a_pod_and_says_how_to_stop_it() -> None:
    result = run_cli("stop", "qwen-pod", "--yes", env=node_env())
    assert result.returncode != 0
    assert "runs in Kubernetes pod ai/vllm-0 (container vllm)" in result.stderr
    assert "sends it no signal" in result.stderr
    assert "Stop it with: kubectl delete pod -n ai vllm-0" in result.stderr


def test_logs_of_a_pod_come_from_the_kubelet() -> None:
    result = run_cli("logs", "qwen-pod", env=node_env())
    assert result.returncode == 0, result.stderr
    assert f"var/log/pods/ai_vllm-0_{POD_UID}/vllm/0.log" in result.stdout
    assert "server is listening on http://0.0.0.0:8080" in result.stdout


STUB = """#!/bin/sh
# stands in for the docker CLI, which has no daemon here: records its argv, says {said}
printf '%s\\n' "$@" > "${{0%/*}}/{name}.argv"
{said_cmd}
exit {code}
"""


def stub_cli(folder: Path, name: str, code: int = 0, said: str = "") -> Path:
    """A `docker` (or `kubectl`) on PATH that records its arguments in NAME.argv."""
    folder.mkdir(exist_ok=True)
    cli = folder / name
    said_cmd = f"echo '{said}' >&2" if said else ""
    cli.write_text(STUB.format(name=name, said=said or "nothing", said_cmd=said_cmd, code=code))
    cli.chmod(0o755)
    return folder / f"{name}.argv"


def docker_node(tmp_path: Path, name: str = "vllm-a") -> Path:
    """The Talos node's tree with its server in a Docker container named `name` instead."""
    import shutil

    node = tmp_path / "node"
    shutil.copytree(FIXTURES / "talos", node)
    (node / "proc/7001/cgroup").write_text(f"0::/system.slice/docker-{CID}.scope\n")
    folder = node / "var/lib/docker/containers" / CID
    folder.mkdir(parents=True)
    (folder / "config.v2.json").write_text(json.dumps({"Name": f"/{name}"}))
    return node


def started_after(node: Path, ticks: int, pid: int = 7001) -> None:
    """The node's process `pid` (the server in the container) started `ticks` + 1 clock
    ticks after boot: after the `docker run` client, as a real container's server does."""
    stat = node / "proc" / str(pid) / "stat"
    head, _, rest = stat.read_text().rpartition(")")
    fields = rest.split()
    fields[19] = str(ticks + 1)  # field 22 of /proc/PID/stat: starttime
    stat.write_text(f"{head}) {' '.join(fields)}\n")


def docker_env(node: Path, bin_dir: Path) -> dict[str, str]:
    return {**node_env(), "SPARKTOP_PROC_ROOT": str(node / "proc"), "SPARKTOP_ROOT": str(node),
            "PATH": str(bin_dir)}  # fmt: skip


def test_stop_runs_docker_stop_when_asked_and_the_cli_is_here(tmp_path: Path) -> None:
    node, bin_dir = docker_node(tmp_path), tmp_path / "bin"
    record = stub_cli(bin_dir, "docker")
    refused = run_cli("stop", "qwen-pod", "--yes", env=docker_env(node, bin_dir))
    assert refused.returncode != 0
    assert "Stop it with: docker stop vllm-a" in refused.stderr
    assert "pass --runtime-stop to have sparktop run it" in refused.stderr
    assert not record.exists()
    result = run_cli("stop", "qwen-pod", "--runtime-stop", env=docker_env(node, bin_dir))
    assert result.returncode == 0, result.stderr
    assert record.read_text().split() == ["stop", "vllm-a"]
    assert "stopped qwen-pod (pid 7001) with `docker stop vllm-a`" in result.stdout


def test_a_failing_docker_stop_is_one_line(tmp_path: Path) -> None:
    node, bin_dir = docker_node(tmp_path), tmp_path / "bin"
    stub_cli(bin_dir, "docker", 1, "Error response from daemon: No such container: vllm-a")
    result = run_cli("stop", "qwen-pod", "--runtime-stop", env=docker_env(node, bin_dir))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "sparktop: error: docker stop vllm-a failed (exit 1): "
        "Error response from daemon: No such container: vllm-a"
    )


def test_without_the_runtime_cli_nothing_is_offered(tmp_path: Path) -> None:
    node, bin_dir = docker_node(tmp_path), tmp_path / "bin"
    bin_dir.mkdir()
    result = run_cli("stop", "qwen-pod", "--runtime-stop", env=docker_env(node, bin_dir))
    assert result.returncode != 0
    assert "Stop it with: docker stop vllm-a" in result.stderr
    assert "--runtime-stop" not in result.stderr


def test_a_pod_is_never_deleted_only_told(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    records = [stub_cli(bin_dir, "docker"), stub_cli(bin_dir, "kubectl")]
    env = {**node_env(), "PATH": str(bin_dir)}
    result = run_cli("stop", "qwen-pod", "--runtime-stop", env=env)
    assert result.returncode != 0
    assert "Stop it with: kubectl delete pod -n ai vllm-0" in result.stderr
    assert not [r for r in records if r.exists()]


@pytest.mark.slow
def test_stop_refuses_the_namespaced_server_and_it_keeps_serving(inside: Inside) -> None:
    ready("in-box")
    result = run_cli("stop", "in-box", "--yes")
    assert result.returncode != 0
    assert "sparktop sends it no signal" in result.stderr
    if inside.container_id is not None:
        assert f"Stop it with: docker stop {inside.container_id[:12]}" in result.stderr
    else:
        assert "another network namespace" in result.stderr
    assert inside.popen.poll() is None
    assert ready("in-box")["health"] == "ready"


# -- serving in a container (serve.container) ----------------------------------------------

BOXED = """\
models:
  - name: qwen-box
    engine: vllm
    repo: Qwen/Qwen3-8B
    local_dir: {models}
    serve:
      served_name: qwen
      port: 8011
      host: 127.0.0.1
      env: {{HF_HUB_OFFLINE: "1"}}
      container:
        image: nvcr.io/nvidia/vllm:25.09-py3
        runtime: {runtime}
        gpus: all
        ipc: host
        volumes: [/srv/hf:/root/.cache/huggingface]
"""


def _boxed_entry(isolated_dirs: dict[str, Path], tmp_path: Path, runtime: str):
    from sparktop.catalog.loader import load_catalog

    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    folder = isolated_dirs["config"] / "catalog"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "boxed.yaml").write_text(BOXED.format(models=models, runtime=runtime))
    return load_catalog(), models


def test_serve_container_is_a_docker_run_argv_named_after_the_entry(
    isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    from sparktop.servers.supervisor import build_argv

    catalog, models = _boxed_entry(isolated_dirs, tmp_path, "docker")
    assert not [e for e in catalog.errors if "boxed.yaml" in e]
    argv = build_argv(catalog.entries["qwen-box"])
    image = argv.index("nvcr.io/nvidia/vllm:25.09-py3")
    assert argv[:image] == [
        "docker", "run", "--rm", "--name", "sparktop-qwen-box",
        "--label", "sparktop.entry=qwen-box", "-p", "127.0.0.1:8011:8011",
        "--gpus", "all", "--ipc", "host",
        "-v", f"{models}:{models}:ro", "-v", "/srv/hf:/root/.cache/huggingface",
        "-e", "HF_HUB_OFFLINE=1",
    ]  # fmt: skip
    inner = argv[image + 1 :]
    assert inner[:3] == ["vllm", "serve", str(models)]
    assert inner[inner.index("--host") + 1] == "0.0.0.0"  # published from inside
    assert inner[inner.index("--port") + 1] == "8011"


def test_podman_gets_the_gpus_as_cdi_devices(isolated_dirs: dict[str, Path], tmp_path: Path):
    from sparktop.servers.supervisor import build_argv

    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "podman")
    argv = build_argv(catalog.entries["qwen-box"])
    assert argv[0] == "podman" and "--gpus" not in argv
    assert argv[argv.index("--device") + 1] == "nvidia.com/gpu=all"


def test_unknown_container_runtime_is_one_clear_line(
    isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "dokcer")
    (line,) = [e for e in catalog.errors if "boxed.yaml" in e]
    assert line.endswith(
        "model qwen-box: serve.container.runtime must be one of docker, podman, "
        "got 'dokcer' (did you mean docker?)"
    )
    assert "qwen-box" not in catalog.entries


def test_a_served_container_is_recorded_stopped_by_name_and_read_back(
    isolated_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What sparktop started through serve.container (here `sleep` stands in for the attached
    `docker run` client) is recorded with its container; stop runs `docker stop NAME`."""
    from sparktop.servers.info import ServerInfo
    from sparktop.servers.registry import Registry
    from sparktop.servers.supervisor import Supervisor

    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "docker")
    record_file = stub_cli(tmp_path / "bin", "docker")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    supervisor = Supervisor(stop_timeout_s=5)
    record = supervisor._spawn(catalog.entries["qwen-box"], ["sleep", "60"])
    try:
        (again,) = [r for r in Registry().load() if r.pid == record.pid]
        assert (again.container_name, again.container_runtime) == ("sparktop-qwen-box", "docker")
        assert again.stop_argv == ["docker", "stop", "sparktop-qwen-box"]
        server = ServerInfo(name="qwen", engine="vllm", pid=record.pid, port=None, managed=True)
        result = supervisor.stop(server)
    finally:
        with contextlib.suppress(OSError):
            os.killpg(record.pgid, signal.SIGKILL)
    assert record_file.read_text().split() == ["stop", "sparktop-qwen-box"]
    assert result.pid == record.pid
    assert (
        not Path(f"/proc/{record.pid}").exists()
        or "Z" in Path(f"/proc/{record.pid}/stat").read_text().split(")")[-1][:3]
    )


def test_records_from_before_containers_read_as_plain_servers() -> None:
    from sparktop.servers.registry import ManagedServer

    old = {"name": "a", "served_name": "a", "engine": "llama.cpp", "pid": 5, "pgid": 5,
           "start_ticks": 1, "host": "127.0.0.1", "port": 8000, "argv": ["x"],
           "log_path": "l"}  # fmt: skip
    record = ManagedServer.from_json(old)
    assert record is not None and record.stop_argv is None
    boxed = ManagedServer.from_json({**old, "container_name": "sparktop-a",
                                     "container_runtime": "podman"})  # fmt: skip
    assert boxed is not None and boxed.stop_argv == ["podman", "stop", "sparktop-a"]
    assert ManagedServer.from_json(boxed.to_json()) == boxed


def test_a_served_container_is_re_adopted_by_its_name_and_stopped_through_its_record(
    isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """After a restart sparktop knows its serve.container server from servers.json and the
    scan alone: the server in container sparktop-qwen-box is one managed row named after the
    entry, and stop runs `docker stop sparktop-qwen-box`. A real `sleep` stands in for the
    attached `docker run` client (the record's own process), linked into the node's /proc."""
    from sparktop.servers.containers import container_name, run_argv
    from sparktop.servers.procscan import read_stat
    from sparktop.servers.registry import ManagedServer, Registry

    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "docker")
    entry = catalog.entries["qwen-box"]
    node, bin_dir = docker_node(tmp_path, container_name(entry.name)), tmp_path / "bin"
    argv_file = stub_cli(bin_dir, "docker")
    client = _start(["sleep", "60"])
    try:
        (node / "proc" / str(client.pid)).symlink_to(f"/proc/{client.pid}")
        stat = read_stat(Path("/proc"), client.pid)
        assert stat is not None
        started_after(node, stat.start_ticks)
        log = tmp_path / "qwen-box.log"
        log.write_text("INFO: Started server process\n")
        port = free_port()
        assert entry.serve.container is not None
        docker_run = run_argv(
            entry.serve.container,
            entry_name=entry.name,
            inner=["vllm"],
            host="127.0.0.1",
            port=port,
        )
        Registry().add(
            ManagedServer(name=entry.name, served_name="qwen", engine="vllm", pid=client.pid,
                          pgid=client.pid, start_ticks=stat.start_ticks, host="127.0.0.1",
                          port=port, argv=docker_run, log_path=str(log),
                          container_name="sparktop-qwen-box", container_runtime="docker")
        )  # fmt: skip
        env = docker_env(node, bin_dir)
        result = run_cli("status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        (server,) = json.loads(result.stdout)["servers"]
        assert server["managed"] is True
        assert (server["name"], server["catalog_name"]) == ("qwen", "qwen-box")
        assert (server["pid"], server["port"], server["log_path"]) == (client.pid, port, str(log))
        assert server["container"]["name"] == "sparktop-qwen-box"
        assert not argv_file.exists()
        stopped = run_cli("stop", "qwen-box", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert argv_file.read_text().split() == ["stop", "sparktop-qwen-box"]
        assert client.wait(timeout=10) is not None  # the client went with it
    finally:
        _end(client)


def test_a_served_container_whose_client_was_killed_stays_managed_and_stops_by_name(
    isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """The `docker run` client of a serve.container server is killed on its own; the
    container keeps serving. sparktop still shows one managed row (the server in
    sparktop-qwen-box, named after the entry; no crashed row for the dead client) and stops
    it only through `docker stop sparktop-qwen-box`, never by signalling the process inside.
    The stub docker ends the container as the real one would: its process leaves /proc."""
    from sparktop.servers.containers import container_name
    from sparktop.servers.procscan import read_stat
    from sparktop.servers.registry import ManagedServer, Registry

    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "docker")
    entry = catalog.entries["qwen-box"]
    node, bin_dir = docker_node(tmp_path, container_name(entry.name)), tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = bin_dir / "docker.argv"
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n# docker stop: records its argv; the container's process ends\n"
        f"printf '%s\\n' \"$@\" > {argv_file}\n/bin/rm -rf {node / 'proc' / '7001'}\n"
    )
    (bin_dir / "docker").chmod(0o755)
    client = _start(["sleep", "60"])
    stat = read_stat(Path("/proc"), client.pid)
    assert stat is not None
    started_after(node, stat.start_ticks)
    port = free_port()
    Registry().add(
        ManagedServer(name=entry.name, served_name="qwen", engine="vllm", pid=client.pid,
                      pgid=client.pid, start_ticks=stat.start_ticks, host="127.0.0.1",
                      port=port, argv=["docker", "run", "--name", "sparktop-qwen-box"],
                      log_path=str(tmp_path / "qwen-box.log"),
                      container_name="sparktop-qwen-box", container_runtime="docker")
    )  # fmt: skip
    _end(client)  # killed on its own: the container lives on
    env = docker_env(node, bin_dir)
    result = run_cli("status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    (server,) = json.loads(result.stdout)["servers"]
    assert server["managed"] is True and server["health"] != "crashed"
    assert (server["name"], server["catalog_name"], server["pid"]) == ("qwen", "qwen-box", 7001)
    assert server["container"]["name"] == "sparktop-qwen-box"
    stopped = run_cli("stop", "qwen-box", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert argv_file.read_text().split() == ["stop", "sparktop-qwen-box"]
    assert "stopped qwen" in stopped.stdout
    after = run_cli("status", "--json", env=env)
    assert json.loads(after.stdout)["servers"] == []  # the record ended with it


def test_a_container_older_than_the_record_of_its_name_is_not_taken_for_it(
    isolated_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """A container named sparktop-qwen-box that was running before sparktop made its record
    (another sparktop's on a shared runtime, a compose file) is not the one sparktop ran:
    it shows as a container sparktop did not start, and stop only says how to stop it."""
    from sparktop.servers.containers import container_name
    from sparktop.servers.procscan import read_stat
    from sparktop.servers.registry import ManagedServer, Registry

    catalog, _ = _boxed_entry(isolated_dirs, tmp_path, "docker")
    entry = catalog.entries["qwen-box"]
    node, bin_dir = docker_node(tmp_path, container_name(entry.name)), tmp_path / "bin"
    argv_file = stub_cli(bin_dir, "docker")
    client = _start(["sleep", "60"])  # started now: after the node's server (ticks 123456)
    try:
        stat = read_stat(Path("/proc"), client.pid)
        assert stat is not None
        Registry().add(
            ManagedServer(name=entry.name, served_name="qwen", engine="vllm", pid=client.pid,
                          pgid=client.pid, start_ticks=stat.start_ticks, host="127.0.0.1",
                          port=free_port(), argv=["docker", "run", "--name", "sparktop-qwen-box"],
                          log_path=str(tmp_path / "qwen-box.log"),
                          container_name="sparktop-qwen-box", container_runtime="docker")
        )  # fmt: skip
        env = docker_env(node, bin_dir)
        result = run_cli("status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        boxed = [s for s in json.loads(result.stdout)["servers"] if s["pid"] == 7001]
        assert len(boxed) == 1 and boxed[0]["managed"] is False
        refused = run_cli("stop", "7001", "--yes", env=env)
        assert refused.returncode != 0 and "docker stop sparktop-qwen-box" in refused.stderr
        assert not argv_file.exists()  # nothing run, nothing signalled
    finally:
        _end(client)
        Registry().remove(client.pid)
