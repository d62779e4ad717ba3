"""Check a downloaded file against the Hub's size and sha256, and remember that it passed.

A file fetched over HTTP is hashed as its bytes arrive (`Digest`; on resume the partial's
bytes are hashed once first), so checking it reads nothing back; a file found complete on
disk, or written by huggingface_hub's Xet transfer, is read once (`check`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from sparktop.downloads.partial import META_DIR

CHUNK = 8 * 1024 * 1024


class Digest:
    """The sha256 and length of a file being written, fed each byte once as it is written."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def reset(self) -> None:
        """The file was truncated to nothing: start again."""
        self._hash = hashlib.sha256()
        self.size = 0

    def feed_file(self, path: Path, progress: Callable[[int], None] | None = None) -> None:
        """Hash the bytes already in `path` (a partial file about to be resumed)."""
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                self.update(chunk)
                if progress is not None:
                    progress(len(chunk))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def sha256_of(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = Digest()
    digest.feed_file(path, progress)
    return digest.hexdigest()


def verdict(size_got: int, sha256_got: str | None, size: int, sha256: str | None) -> str | None:
    """None when the bytes are right, else what is wrong (one line)."""
    if size_got != size:
        return f"size {size_got} bytes, the Hub says {size}"
    if sha256 and sha256_got != sha256.lower():
        got = sha256_got or "?"
        return f"sha256 {got[:12]}…, the Hub says {sha256[:12]}…"
    return None


def check(
    path: Path, size: int, sha256: str | None, progress: Callable[[int], None] | None = None
) -> str | None:
    """None when the file on disk is right, else what is wrong (one line): reads it once."""
    actual = path.stat().st_size
    if actual != size:
        return verdict(actual, None, size, sha256)
    return verdict(actual, sha256_of(path, progress) if sha256 else None, size, sha256)


def stamp_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / META_DIR / (repo_path + ".sparktop.verified")


def write_stamp(local_dir: Path, repo_path: str, sha256: str | None) -> None:
    """Record that the file passed verification (size and mtime pin it to this very file)."""
    final = local_dir / repo_path
    st = final.stat()
    stamp = stamp_path(local_dir, repo_path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    data = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, stamp)


def is_verified(local_dir: Path, repo_path: str, size: int, sha256: str | None) -> bool:
    """The file passed verification against this size and sha256 and is unchanged since."""
    stamp = _stamp(local_dir, repo_path)
    return stamp is not None and stamp.get("size") == size and stamp.get("sha256") == sha256


def has_stamp(local_dir: Path, repo_path: str) -> bool:
    """The file passed verification and is unchanged since (same size and mtime)."""
    return _stamp(local_dir, repo_path) is not None


def _stamp(local_dir: Path, repo_path: str) -> dict | None:
    """The verification stamp, if it still describes the file on disk (size and mtime)."""
    try:
        st = (local_dir / repo_path).stat()
        data = json.loads(stamp_path(local_dir, repo_path).read_text())
    except (OSError, ValueError):
        return None
    if data.get("size") != st.st_size or data.get("mtime_ns") != st.st_mtime_ns:
        return None
    return data
