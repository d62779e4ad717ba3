"""Where a file being downloaded lives until it is complete and verified, and which version
of the file those bytes belong to.

sparktop keeps its partial files beside huggingface_hub's own metadata, under
``<local_dir>/.cache/huggingface/download/``, named ``<path>.sparktop.incomplete``: a stable
name (unlike the client's per-process temporary files, which it deletes on failure), so a
download cut by a kill or a network drop resumes from the bytes it has. Beside it,
``<path>.sparktop.version`` says which version (size, sha256, ETag) the bytes are of: a
partial of another version (the file was replaced on the Hub) is never resumed onto.
The per-file lock is ``<path>.lock`` there, the one `hf download --local-dir` takes too.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

META_DIR = Path(".cache") / "huggingface" / "download"
SUFFIX = ".sparktop.incomplete"
BAD_SUFFIX = ".sparktop.bad"
VERSION_SUFFIX = ".sparktop.version"
XET_SUFFIX = ".xet" + SUFFIX
"""The file huggingface_hub's Xet transfer writes (whole, never resumed from by HTTP)."""


@dataclass(frozen=True)
class Version:
    """Which bytes a file is: its size, the Hub's sha256 (LFS files) and ETag."""

    size: int
    sha256: str | None
    etag: str | None


def final_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / repo_path


def partial_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / META_DIR / (repo_path + SUFFIX)


def xet_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / META_DIR / (repo_path + XET_SUFFIX)


def version_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / META_DIR / (repo_path + VERSION_SUFFIX)


def lock_path(local_dir: Path, repo_path: str) -> Path:
    """The file's lock: the path huggingface_hub's `--local-dir` download locks as well."""
    return local_dir / META_DIR / (repo_path + ".lock")


def bad_path(local_dir: Path, repo_path: str) -> Path:
    """Where a file that failed verification is kept (out of the model's tree)."""
    return local_dir / META_DIR / (repo_path + BAD_SUFFIX)


def read_version(local_dir: Path, repo_path: str) -> Version | None:
    """The version the partial file's bytes belong to; None when not recorded (or unreadable)."""
    try:
        data = json.loads(version_path(local_dir, repo_path).read_text())
        return Version(int(data["size"]), data.get("sha256"), data.get("etag"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_version(local_dir: Path, repo_path: str, version: Version) -> None:
    """Record the version before the partial file's first byte is written."""
    path = version_path(local_dir, repo_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(version)))
    os.replace(tmp, path)


def stale_reason(local_dir: Path, repo_path: str, version: Version) -> str | None:
    """Why the partial file here must not be resumed (of another or an unknown version, or
    longer than the file); None when there is none or it is this version's."""
    part = partial_path(local_dir, repo_path)
    try:
        have = part.stat().st_size
    except OSError:
        return None
    kept = read_version(local_dir, repo_path)
    if kept is None:
        return "its version was not recorded"
    if kept != version:
        return "the file changed on the Hub since"
    if have > version.size:
        return "it is longer than the file"
    return None


def resumable_bytes(local_dir: Path, repo_path: str, version: Version) -> int:
    """Bytes of this version already in the partial file (0 when it is stale or absent)."""
    if stale_reason(local_dir, repo_path, version) is not None:
        return 0
    with contextlib.suppress(OSError):
        return partial_path(local_dir, repo_path).stat().st_size
    return 0


def discard(local_dir: Path, repo_path: str) -> None:
    """Remove the partial file and its version record."""
    for path in (partial_path(local_dir, repo_path), version_path(local_dir, repo_path)):
        path.unlink(missing_ok=True)
