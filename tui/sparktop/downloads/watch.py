"""Downloads started elsewhere (another shell's `hf download`), seen from their growing files.

huggingface_hub writes a file being downloaded as
- cache mode: ``<HF_HUB_CACHE>/models--ORG--NAME/blobs/<etag>[.<uuid>].incomplete``;
- ``--local-dir`` mode: ``<dir>/.cache/huggingface/download/<folder>/<hash>.<etag>[.<uuid>]
  .incomplete`` where ``<hash>`` is the urlsafe-base64 sha1 of ``<file name>.metadata``.
The etag of an LFS file is its sha256, so the repo's file list (asked once, from the Hub)
gives the file's name and expected size: then percent and ETA can be shown, else bytes and
speed only.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sparktop.downloads.partial import META_DIR, SUFFIX
from sparktop.snapshot import ExternalDownloadInfo

ACTIVE_WITHIN_S = 30.0
LISTING_TTL_S = 600.0


@dataclass
class ExternalDownload:
    path: Path
    mode: str  # "cache" | "local_dir"
    repo: str | None
    file: str | None
    size: int
    expected: int | None
    speed_bps: float = 0.0
    active: bool = True
    _seen: tuple[float, int] = (0.0, 0)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.size / self.expected if self.expected else None

    @property
    def eta_s(self) -> float | None:
        if not self.expected or self.speed_bps <= 0:
            return None
        return max(0.0, (self.expected - self.size) / self.speed_bps)

    def info(self) -> ExternalDownloadInfo:
        """This download as the views and `status --json` show it."""
        return ExternalDownloadInfo(**self.to_json())

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "mode": self.mode,
            "repo": self.repo,
            "file": self.file,
            "done_bytes": self.size,
            "total_bytes": self.expected,
            "percent": round(self.percent, 2) if self.percent is not None else None,
            "speed_bps": round(self.speed_bps, 1),
            "eta_s": round(self.eta_s, 1) if self.eta_s is not None else None,
            "active": self.active,
            "state": "downloading (external)" if self.active else "stalled (external)",
        }


def short_hash(name: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha1(name.encode()).digest()).decode()


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(home) / "hub"


def repo_from_cache_folder(name: str) -> str | None:
    """models--unsloth--Qwen3-GGUF → unsloth/Qwen3-GGUF."""
    if not name.startswith("models--"):
        return None
    return "/".join(name[len("models--") :].split("--"))


Listing = dict[str, tuple[str, int, str | None]]
"""sha256 or path → (path, size, sha256) for one repo."""


class ExternalWatcher:
    def __init__(
        self,
        local_dirs: Callable[[], Iterable[tuple[Path, str | None]]] = lambda: (),
        cache_dir: Path | None = None,
        lookup: Callable[[str], Listing | None] | None = None,
    ) -> None:
        self.local_dirs = local_dirs
        self.cache_dir = cache_dir or hub_cache_dir()
        self.lookup = lookup or hub_listing
        self._known: dict[Path, ExternalDownload] = {}
        self._listings: dict[str, tuple[float, Listing | None]] = {}

    def listing(self, repo: str) -> Listing | None:
        cached = self._listings.get(repo)
        now = time.monotonic()
        if cached is not None and now - cached[0] < LISTING_TTL_S:
            return cached[1]
        found = self.lookup(repo)
        self._listings[repo] = (now, found)
        return found

    def _candidates(self) -> Iterable[tuple[Path, str, str | None]]:
        if self.cache_dir.is_dir():
            for repo_dir in self.cache_dir.glob("models--*"):
                for blob in (repo_dir / "blobs").glob("*.incomplete"):
                    yield blob, "cache", repo_from_cache_folder(repo_dir.name)
        for local_dir, repo in self.local_dirs():
            meta = local_dir / META_DIR
            if meta.is_dir():
                for part in meta.rglob("*.incomplete"):
                    if not part.name.endswith(SUFFIX):  # sparktop's own are listed already
                        yield part, "local_dir", repo

    def _identify(self, item: ExternalDownload, local_dir_meta: Path | None) -> None:
        if item.repo is None:
            return
        listing = self.listing(item.repo)
        if not listing:
            return
        pieces = item.path.name.split(".")
        if item.mode == "cache":
            etag = pieces[0]
            hit = listing.get(etag)
        else:
            etag = pieces[1] if len(pieces) > 2 else None
            hit = listing.get(etag) if etag else None
            if hit is None and local_dir_meta is not None:
                folder = item.path.parent.relative_to(local_dir_meta).as_posix()
                for path, size, sha in listing.values():
                    head, _, base = path.rpartition("/")
                    if head == ("" if folder == "." else folder) and item.path.name.startswith(
                        short_hash(base + ".metadata")
                    ):
                        hit = (path, size, sha)
                        break
        if hit is not None:
            item.file, item.expected = hit[0], hit[1]

    def scan(self, now: float | None = None) -> list[ExternalDownload]:
        now = time.monotonic() if now is None else now
        wall = time.time()
        seen: dict[Path, ExternalDownload] = {}
        for path, mode, repo in self._candidates():
            try:
                st = path.stat()
            except OSError:
                continue
            item = self._known.get(path)
            if item is None:
                item = ExternalDownload(path, mode, repo, None, st.st_size, None)
                meta = None
                if mode == "local_dir":
                    for parent in path.parents:
                        if parent.name == "download" and parent.parent.name == "huggingface":
                            meta = parent
                            break
                self._identify(item, meta)
            then, before = item._seen
            if then and now - then >= 0.5 and st.st_size >= before:
                rate = (st.st_size - before) / (now - then)
                item.speed_bps = rate if item.speed_bps == 0 else 0.3 * rate + 0.7 * item.speed_bps
                item._seen = (now, st.st_size)
            elif not then:
                item._seen = (now, st.st_size)
            item.size = st.st_size
            item.active = wall - st.st_mtime < ACTIVE_WITHIN_S
            seen[path] = item
        self._known = seen
        return sorted(seen.values(), key=lambda d: str(d.path))


def hub_listing(repo: str) -> Listing | None:
    """The repo's files by LFS sha256 (and by path), from the Hub; None if it cannot tell."""
    from sparktop.downloads.hub import model_info

    try:
        info = model_info(repo)
    except Exception:
        return None
    out: Listing = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        size = lfs.size if lfs is not None else sibling.size
        if size is None:
            continue
        sha = lfs.sha256 if lfs is not None else None
        entry = (sibling.rfilename, int(size), sha)
        out[sibling.rfilename] = entry
        if sha:
            out[sha] = entry
        if sibling.blob_id:
            out.setdefault(sibling.blob_id, entry)
    return out
