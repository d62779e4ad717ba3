"""What to download: a repo's files for some include patterns, their sizes and checksums,
asked from the Hub through `huggingface_hub` (HF_ENDPOINT and HF_TOKEN honoured)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparktop.downloads.partial import Version, final_path, resumable_bytes
from sparktop.downloads.verify import is_verified

SPACE_MARGIN = 1024**3
"""Keep at least this much free after a download (the filesystem needs room to breathe)."""


class DownloadError(Exception):
    """One line saying what went wrong and where."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None
    """The Hub's sha256 for LFS files (what `sha256sum` prints); None for small git files."""
    etag: str | None = None
    """The Hub's ETag: the sha256 of an LFS file, else its git blob id."""

    @property
    def version(self) -> Version:
        return Version(self.size, self.sha256, self.etag)


@dataclass(frozen=True)
class DownloadPlan:
    repo: str
    revision: str
    commit: str
    local_dir: Path
    files: tuple[RemoteFile, ...]
    present_bytes: int
    """Bytes already here: complete files plus partial ones of the same version."""
    free_bytes: int
    on_disk: tuple[int, ...] = ()
    """Per file (as `files`), the bytes of it already here (the whole size when complete)."""
    verified: tuple[str, ...] = ()
    """The files complete here that passed verification (size and sha256) and are unchanged."""

    @property
    def complete(self) -> bool:
        """Every file is here whole (sizes as the Hub says; their sha256 yet to be checked
        unless `all_verified`)."""
        return (
            bool(self.files)
            and self.present_bytes == self.total_bytes
            and all(have == f.size for have, f in zip(self.on_disk, self.files, strict=True))
        )

    @property
    def all_verified(self) -> bool:
        return self.complete and len(self.verified) == len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def needed_bytes(self) -> int:
        return max(0, self.total_bytes - self.present_bytes)

    @property
    def fits(self) -> bool:
        return self.free_bytes - self.needed_bytes >= SPACE_MARGIN

    def space_problem(self) -> str | None:
        """Why the download cannot start here, with the numbers; None when it fits."""
        if self.fits:
            return None
        from sparktop.units import fmt_bytes

        return (
            f"not enough space under {self.local_dir}: needs {fmt_bytes(self.needed_bytes)} "
            f"more (+1 GiB margin), {fmt_bytes(self.free_bytes)} free"
        )


def endpoint() -> str | None:
    """HF_ENDPOINT read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def endpoint_url() -> str:
    """The Hub asked: HF_ENDPOINT, else huggingface_hub's default (for messages)."""
    from huggingface_hub import constants

    return (endpoint() or constants.ENDPOINT).rstrip("/")


def metadata_timeout() -> float:
    """Seconds one question to the Hub (file lists, sizes, checksums) may wait for an answer:
    HF_HUB_ETAG_TIMEOUT, huggingface_hub's bound on metadata requests (default 10)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def model_info(repo: str, revision: str = "main") -> Any:
    """The repo's files with sizes and checksums, the wait bounded by `metadata_timeout`
    (huggingface_hub waits forever by default). Raises the client's errors."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), token=token())
    return api.model_info(repo, revision=revision, files_metadata=True, timeout=metadata_timeout())


def token() -> str | None:
    """HF_TOKEN, else the token stored by `hf auth login`; never shown anywhere."""
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def describe_hub_error(exc: Exception, repo: str, revision: str) -> str:
    import httpx2
    from huggingface_hub import errors

    if isinstance(exc, httpx2.TimeoutException):
        return f"the Hub at {endpoint_url()} did not answer in time (asking about {repo})"
    if isinstance(exc, httpx2.TransportError):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"cannot reach the Hub at {endpoint_url()} (asking about {repo}): {reason}"
    if isinstance(exc, errors.GatedRepoError):
        return f"{repo} is gated: accept its terms on the Hub and set HF_TOKEN"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return f"repository {repo} not found (or private: set HF_TOKEN)"
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"revision {revision!r} not found in {repo}"
    if isinstance(exc, errors.EntryNotFoundError):
        return f"file not found in {repo}@{revision}: {exc}".splitlines()[0]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{repo}: {text}"


def existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def plan_download(
    repo: str,
    include: list[str] | tuple[str, ...] = (),
    *,
    revision: str = "main",
    local_dir: Path,
) -> DownloadPlan:
    """List the files `include` selects (all when empty), with sizes, and the disk situation."""
    import httpx2
    from huggingface_hub.utils import filter_repo_objects

    try:
        info = model_info(repo, revision)
    except httpx2.TimeoutException:
        raise DownloadError(
            f"the Hub at {endpoint_url()} did not answer within {metadata_timeout():g} s "
            f"(asking for the files of {repo}; HF_HUB_ETAG_TIMEOUT sets the wait)"
        ) from None
    except Exception as exc:  # the hub client raises many kinds; all become one line
        raise DownloadError(describe_hub_error(exc, repo, revision)) from None
    siblings = list(info.siblings or [])
    chosen = list(
        filter_repo_objects(
            siblings, allow_patterns=list(include) or None, key=lambda s: s.rfilename
        )
    )
    if not chosen:
        patterns = ", ".join(include) or "*"
        raise DownloadError(f"no file in {repo}@{revision} matches {patterns}")
    files = []
    for sibling in sorted(chosen, key=lambda s: s.rfilename):
        lfs = sibling.lfs
        size = lfs.size if lfs is not None else sibling.size
        if size is None:
            raise DownloadError(f"{repo}: the Hub did not say the size of {sibling.rfilename}")
        sha256 = lfs.sha256 if lfs is not None else None
        files.append(RemoteFile(sibling.rfilename, int(size), sha256, sha256 or sibling.blob_id))
    on_disk, verified = [], []
    for item in files:
        done = final_path(local_dir, item.path)
        if done.is_file() and done.stat().st_size == item.size:
            on_disk.append(item.size)
            if is_verified(local_dir, item.path, item.size, item.sha256):
                verified.append(item.path)
            continue
        on_disk.append(resumable_bytes(local_dir, item.path, item.version))
    free = shutil.disk_usage(existing_parent(local_dir)).free
    return DownloadPlan(
        repo=repo,
        revision=revision,
        commit=info.sha or revision,
        local_dir=local_dir,
        files=tuple(files),
        present_bytes=sum(on_disk),
        free_bytes=free,
        on_disk=tuple(on_disk),
        verified=tuple(verified),
    )
