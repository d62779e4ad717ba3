"""Name the container a server runs in, from /proc/PID/cgroup and the runtime's own files.

Docker, Podman, containerd and CRI-O put each container in a cgroup named after its 64-hex
id; Kubernetes nests those under kubepods…/pod<UID>/. The names come from files where they
are readable: Docker's containers/ID/config.v2.json, Podman's containers.json, and the
kubelet's /var/log/pods/NAMESPACE_POD_UID/CONTAINER/ and /var/log/containers/ links. A Podman
container's published ports come from its configuration in libpod's Bolt database (its JSON
is stored as it is, so it is found by the id without a Bolt reader), its log is ctr.log.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sparktop.servers.netns import Published
from sparktop.snapshot import ContainerInfo

if TYPE_CHECKING:
    from sparktop.catalog.entry import ContainerSpec

_ID = r"([0-9a-f]{64})"
_RUNTIMES = (
    (re.compile(rf"(?:^|/)docker[-/]{_ID}"), "docker"),
    (re.compile(rf"(?:^|/)libpod-(?!conmon){_ID}"), "podman"),
    (re.compile(rf"(?:^|/)crio-{_ID}"), "cri-o"),
    (re.compile(rf"(?:^|/)cri-containerd-{_ID}"), "containerd"),
    (re.compile(rf"/{_ID}(?:\.scope)?$"), ""),
)
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


@dataclass(frozen=True)
class Container:
    info: ContainerInfo
    log_path: str | None = None
    """Its log where readable (the kubelet's /var/log/pods/…, Docker's json log, Podman's
    ctr.log)."""
    published: tuple[Published, ...] = ()
    """Its ports published on the host, where the runtime's files say (Podman's)."""

    @property
    def stop_command(self) -> str:
        return stop_command(self.info)


_TOOLS = {"docker": "docker", "podman": "podman", "cri-o": "crictl", "containerd": "nerdctl"}


def describe(info: ContainerInfo) -> str:
    """`Docker container vllm-a`, `Kubernetes pod ai/vllm-0 (container vllm)`."""
    if info.pod:
        pod = info.pod if "/" in info.pod else f"with UID {info.pod}"
        return f"Kubernetes pod {pod}" + (f" (container {info.name})" if info.name else "")
    runtime = {"docker": "Docker", "podman": "Podman", "cri-o": "CRI-O"}.get(info.runtime)
    return f"{runtime or info.runtime} container {info.name or info.id[:12]}"


def stop_command(info: ContainerInfo) -> str:
    """The command that stops it the way it was started."""
    if info.pod and "/" in info.pod:
        namespace, name = info.pod.split("/", 1)
        return f"kubectl delete pod -n {namespace} {name}"
    if info.pod:
        return f"kubectl delete pod -n NAMESPACE NAME (of the pod with UID {info.pod})"
    tool = _TOOLS.get(info.runtime, "nerdctl")
    return f"{tool} stop {info.name or info.id[:12]}"


def logs_command(info: ContainerInfo) -> str:
    """The command that shows its log."""
    if info.pod and "/" in info.pod:
        namespace, name = info.pod.split("/", 1)
        return f"kubectl logs -n {namespace} {name}" + (f" -c {info.name}" if info.name else "")
    tool = _TOOLS.get(info.runtime, "nerdctl")
    return f"{tool} logs {info.name or info.id[:12]}"


STOP_TIMEOUT_S = 60.0
"""How long a `docker stop` / `podman stop` may take (the runtime's own grace is 10 s)."""


def stop_argv(info: ContainerInfo) -> list[str] | None:
    """`docker stop NAME` / `podman stop NAME` as an argv, when that CLI is on PATH; None for
    a pod (only `kubectl delete pod` stops it for good: suggested, never run) and the rest."""
    if info.pod or info.runtime not in ("docker", "podman") or shutil.which(info.runtime) is None:
        return None
    return [info.runtime, "stop", info.name or info.id[:12]]


def run_runtime(argv: Sequence[str], timeout_s: float = STOP_TIMEOUT_S) -> str | None:
    """Run a runtime CLI command (an argv, never a shell); None when it worked, else one line
    that says why not, with the last line it printed."""
    command = " ".join(argv)
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"{command} did not finish in {timeout_s:.0f} s"
    except OSError as exc:
        return f"cannot run {command}: {exc.strerror or exc}"
    if done.returncode == 0:
        return None
    said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return f"{command} failed (exit {done.returncode})" + (f": {said[-1]}" if said else "")


def parse_cgroup(text: str) -> tuple[str, str, str | None] | None:
    """(runtime, container id, pod UID or None) from /proc/PID/cgroup's text."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for pattern, runtime in _RUNTIMES:
            match = pattern.search(path)
            if match is None:
                continue
            pod = _POD.search(path)
            uid = pod.group(1).replace("_", "-") if pod else None
            if not runtime:
                runtime = "kubernetes" if "kubepods" in path else "containerd"
            return runtime, match.group(1), uid
    return None


def _cgroup(proc: Path, pid: int | str) -> str:
    try:
        return (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return ""


def container_of(proc: Path, pid: int, root: Path = Path("/")) -> Container | None:
    """The container pid runs in; None for a host process, or one in sparktop's own."""
    found = parse_cgroup(_cgroup(proc, pid))
    if found is None:
        return None
    own = parse_cgroup(_cgroup(Path("/proc"), "self"))
    if own is not None and own[1] == found[1]:
        return None  # sparktop runs in the same container: a process of ours to look at
    runtime, cid, uid = found
    if uid is not None:
        return _pod(root, runtime, cid, uid)
    if runtime == "docker":
        return _docker(root, cid)
    if runtime == "podman":
        return _podman(root, cid)
    return Container(ContainerInfo(runtime, cid))


def _docker(root: Path, cid: str) -> Container:
    folder = root / "var/lib/docker/containers" / cid
    name = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        name = str(json.loads((folder / "config.v2.json").read_text()).get("Name", "")) or None
    log = folder / f"{cid}-json.log"
    return Container(
        ContainerInfo("docker", cid, name.lstrip("/") if name else None),
        str(log) if log.is_file() else None,
    )


PODMAN_STORAGE = "var/lib/containers/storage"


def _podman(root: Path, cid: str) -> Container:
    log = root / PODMAN_STORAGE / "overlay-containers" / cid / "userdata/ctr.log"
    return Container(
        ContainerInfo("podman", cid, _podman_name(root, cid)),
        str(log) if log.is_file() else None,
        podman_published(root / PODMAN_STORAGE / "libpod/bolt_state.db", cid),
    )


def _podman_name(root: Path, cid: str) -> str | None:
    for base in (PODMAN_STORAGE, "run/containers/storage"):
        try:
            records = json.loads((root / base / "overlay-containers/containers.json").read_text())
        except (OSError, ValueError):
            continue
        for record in records if isinstance(records, list) else []:
            if isinstance(record, dict) and record.get("id") == cid and record.get("names"):
                return str(record["names"][0])
    return None


def podman_published(db: Path, cid: str) -> tuple[Published, ...]:
    """The ports Podman publishes for container cid, from its configuration's JSON in
    libpod's Bolt database (`newPortMappings`; Podman 3's `portMappings`); () when unreadable
    (Podman 5 keeps them in SQLite, rootless Podman under the user's home)."""
    try:
        data = db.read_bytes()
    except OSError:
        return ()
    key = f'"id":"{cid}"'.encode()
    at = data.find(key)
    while at >= 0:
        start = data.rfind(b'{"spec":', 0, at)
        if start >= 0:
            with contextlib.suppress(ValueError):
                text = data[start : start + CONFIG_MAX].decode("utf-8", "replace")
                config, _ = json.JSONDecoder().raw_decode(text)
                if isinstance(config, dict) and config.get("id") == cid:
                    return _mappings(config)
        at = data.find(key, at + 1)
    return ()


CONFIG_MAX = 1 << 20
"""Bytes of libpod's database decoded for one container's configuration (it is a few KiB;
decoding to the end of a large database for each candidate would cost its whole size)."""


def _mappings(config: dict) -> tuple[Published, ...]:
    """Published ports from a libpod container configuration (a port range counted out)."""
    out: list[Published] = []

    def proto(m: dict) -> str:  # "tcp,udp" publishes both
        said = str(m.get("protocol") or "tcp")
        return "tcp" if "tcp" in said.split(",") else said

    for m in config.get("newPortMappings") or []:
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            host, inside = int(m["host_port"]), int(m["container_port"])
            for i in range(max(int(m.get("range") or 1), 1)):
                out.append(Published(str(m.get("host_ip") or ""), host + i, "", inside + i,
                                     proto(m)))  # fmt: skip
    for m in config.get("portMappings") or []:
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            out.append(Published(str(m.get("hostIP") or ""), int(m["hostPort"]), "",
                                 int(m["containerPort"]), proto(m)))  # fmt: skip
    return tuple(out)


def _pod(root: Path, runtime: str, cid: str, uid: str) -> Container:
    """A Kubernetes container: pod namespace/name and container name from the kubelet's logs."""
    pods = root / "var/log/pods"
    try:
        folder = next((p for p in pods.iterdir() if p.name.endswith(f"_{uid}")), None)
    except OSError:
        folder = None
    if folder is None:
        return Container(ContainerInfo(runtime, cid, None, uid))
    namespace, _, rest = folder.name.partition("_")
    pod = rest.rsplit("_", 1)[0]
    name = _pod_container(root, cid, folder)
    log = None
    if name is not None:
        logs = sorted((folder / name).glob("*.log"), key=lambda p: p.stat().st_mtime)
        log = str(logs[-1]) if logs else None
    return Container(ContainerInfo(runtime, cid, name, f"{namespace}/{pod}"), log)


def _pod_container(root: Path, cid: str, folder: Path) -> str | None:
    """The container's name: /var/log/containers/POD_NS_NAME-ID.log, else the pod's only one."""
    try:
        link = next((root / "var/log/containers").glob(f"*-{cid}.log"), None)
    except OSError:
        link = None
    if link is not None:
        parts = link.name[: -len(f"-{cid}.log")].split("_")
        if len(parts) >= 3:
            return "_".join(parts[2:])
    try:
        names = [p.name for p in folder.iterdir() if p.is_dir()]
    except OSError:
        names = []
    return names[0] if len(names) == 1 else None


# -- serving in a container (serve.container) ----------------------------------------------


def container_name(entry_name: str) -> str:
    """The container sparktop names after a catalog entry (catalog names are valid names)."""
    return f"sparktop-{entry_name}"


def run_argv(
    spec: ContainerSpec,
    *,
    entry_name: str,
    inner: Sequence[str],
    host: str,
    port: int,
    env: Sequence[tuple[str, str]] = (),
    mounts: Sequence[str] = (),
) -> list[str]:
    """`docker run …` (or podman) that serves `inner` in spec.image, as an argv list: the
    container named after the entry, its port published on host:port, removed when it ends."""
    argv = [spec.runtime, "run", "--rm", "--name", container_name(entry_name),
            "--label", f"sparktop.entry={entry_name}", "-p", f"{host}:{port}:{port}"]  # fmt: skip
    if spec.gpus:
        if spec.runtime == "podman":  # CDI names, as nvidia-ctk cdi generate writes them
            argv += ["--device", f"nvidia.com/gpu={spec.gpus}"]
        else:
            argv += ["--gpus", spec.gpus]
    if spec.ipc:
        argv += ["--ipc", spec.ipc]
    for volume in (*mounts, *spec.volumes):
        argv += ["-v", volume]
    for name, value in env:
        argv += ["-e", f"{name}={value}"]
    return [*argv, *spec.args, spec.image, *inner]
