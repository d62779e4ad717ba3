"""Where a catalog entry's files are on this machine, and how much of them is there."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sparktop.catalog.entry import ModelEntry
from sparktop.engines import adapter

SKIP_SUFFIXES = (".incomplete", ".lock", ".part")
SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
"""A GGUF split's shard name: its number and the count."""


def local_files(entry: ModelEntry) -> list[Path]:
    """The entry's files that exist on disk: its `files`, or what `include` matches."""
    if entry.local_dir is None:
        return []
    if entry.files:
        return [p for p in entry.file_paths() if p.is_file()]
    if not entry.local_dir.is_dir():
        return []
    patterns = entry.include or ("*",)
    found = []
    for root, _dirs, names in os.walk(entry.local_dir):
        if "/.cache" in root or "/." in root[len(str(entry.local_dir)) :]:
            continue
        for name in names:
            if name.endswith(SKIP_SUFFIXES):
                continue
            path = Path(root, name)
            rel = path.relative_to(entry.local_dir).as_posix()
            if any(fnmatch.fnmatch(rel, pat) for pat in patterns):
                found.append(path)
    return sorted(found)


def model_path(entry: ModelEntry) -> Path | None:
    """What the engine is given: for GGUF the first shard, else the model directory."""
    if entry.local_dir is None:
        return None
    if entry.files:
        return entry.local_dir / entry.files[0]
    return adapter(entry.engine).model_in(entry.local_dir, lambda: local_files(entry))


@dataclass(frozen=True)
class DiskState:
    present_bytes: int
    expected_bytes: int | None
    files: int
    partial_bytes: int = 0
    """Bytes in unfinished downloads (sparktop's or huggingface_hub's) under local_dir."""
    verified: bool = False
    """Every file passed sparktop's size + sha256 check and has not changed since."""
    whole: bool = False
    """Every file of the entry is here and known finished (`all_here`): `size_gb`, an
    estimate for before the files are on disk, no longer matters."""

    @property
    def complete(self) -> bool:
        if self.files == 0 or self.partial_bytes:
            return False
        if self.whole:
            return True
        return self.expected_bytes is None or self.present_bytes >= 0.98 * self.expected_bytes

    @property
    def label(self) -> str:
        """not on disk / partial / complete / verified, as the catalog view shows it."""
        if self.files == 0 and not self.partial_bytes:
            return "not on disk"
        if not self.complete:
            return "partial"
        return "verified" if self.verified else "complete"


def _partial_bytes(local_dir: Path) -> int:
    meta = local_dir / ".cache" / "huggingface" / "download"
    if not meta.is_dir():
        return 0
    return sum(p.stat().st_size for p in meta.rglob("*.incomplete") if p.is_file())


def _hf_finished(local_dir: Path, rel: str) -> bool:
    """`hf download --local-dir` finished this file: its metadata (commit, etag, time),
    written after the last byte, is no older than the file."""
    meta = local_dir / ".cache" / "huggingface" / "download" / (rel + ".metadata")
    try:
        stamped = float(meta.read_text().splitlines()[2])
        return (local_dir / rel).stat().st_mtime - 1 <= stamped
    except (OSError, ValueError, IndexError):
        return False


def _sets_whole(local_dir: Path, rels: list[str]) -> bool:
    """Every GGUF split set (`-00001-of-00003.gguf`) has all its shards, and every
    safetensors index has the shards it maps."""
    names = set(rels)
    for rel in rels:
        shard = SHARD.search(rel)
        if shard is not None:
            count = int(shard.group(2))
            stem = rel[: shard.start()]
            if any(f"{stem}-{n:05d}-of-{count:05d}.gguf" not in names for n in range(1, count + 1)):
                return False
        if rel.endswith(".safetensors.index.json"):
            try:
                mapped = set(json.loads((local_dir / rel).read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return False
            folder = rel.rpartition("/")[0]
            if any(f"{folder}/{m}".lstrip("/") not in names for m in mapped):
                return False
    return True


def all_here(entry: ModelEntry, rels: list[str], verified: list[bool]) -> bool:
    """Every file of the entry is on disk and finished: its listed `files` all there (else
    every split set and index whole), and each file verified by sparktop's download or
    finished by `hf download`. What then counts is the files, not the catalog's size_gb."""
    local_dir = entry.local_dir
    if local_dir is None or not rels:
        return False
    if entry.files and len(rels) != len(entry.files):
        return False
    if not entry.files and not _sets_whole(local_dir, rels):
        return False
    return all(ok or _hf_finished(local_dir, rel) for rel, ok in zip(rels, verified, strict=True))


def disk_state(entry: ModelEntry) -> DiskState:
    from sparktop.downloads.verify import has_stamp

    files = local_files(entry)
    local_dir = entry.local_dir
    rels = [p.relative_to(local_dir).as_posix() for p in files] if local_dir else []
    stamped = [has_stamp(local_dir, rel) for rel in rels] if local_dir else []
    return DiskState(
        present_bytes=sum(p.stat().st_size for p in files),
        expected_bytes=entry.size_bytes,
        files=len(files),
        partial_bytes=_partial_bytes(local_dir) if local_dir else 0,
        verified=bool(stamped) and all(stamped),
        whole=all_here(entry, rels, stamped),
    )
