"""Where a file being downloaded lives until it is complete and verified.

sparktop keeps its partial files beside huggingface_hub's own metadata, under
``<local_dir>/.cache/huggingface/download/``, named ``<path>.sparktop.incomplete``: a stable
name (unlike the client's per-process temporary files, which it deletes on failure), so a
download cut by a kill or a network drop resumes from the bytes it has.
"""

from __future__ import annotations

from pathlib import Path

META_DIR = Path(".cache") / "huggingface" / "download"
SUFFIX = ".sparktop.incomplete"
BAD_SUFFIX = ".sparktop.bad"


def final_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / repo_path


def partial_path(local_dir: Path, repo_path: str) -> Path:
    return local_dir / META_DIR / (repo_path + SUFFIX)


def bad_path(local_dir: Path, repo_path: str) -> Path:
    """Where a file that failed verification is kept (out of the model's tree)."""
    return local_dir / META_DIR / (repo_path + BAD_SUFFIX)
