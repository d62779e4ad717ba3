"""Where a catalog entry's files are on this machine, and how much of them is there."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from sparktop.catalog.entry import ModelEntry
from sparktop.engines import adapter

SKIP_SUFFIXES = (".incomplete", ".lock", ".part")


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

    @property
    def complete(self) -> bool:
        if self.files == 0 or self.partial_bytes:
            return False
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


def disk_state(entry: ModelEntry) -> DiskState:
    from sparktop.downloads.verify import has_stamp

    files = local_files(entry)
    verified = (
        bool(files)
        and entry.local_dir is not None
        and all(
            has_stamp(entry.local_dir, p.relative_to(entry.local_dir).as_posix()) for p in files
        )
    )
    return DiskState(
        present_bytes=sum(p.stat().st_size for p in files),
        expected_bytes=entry.size_bytes,
        files=len(files),
        partial_bytes=_partial_bytes(entry.local_dir) if entry.local_dir else 0,
        verified=verified,
    )
