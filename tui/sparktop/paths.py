"""Where sparktop keeps config, state and data (XDG base directories).

Each directory can be overridden on its own (SPARKTOP_CONFIG_DIR, SPARKTOP_STATE_DIR,
SPARKTOP_DATA_DIR), which the tests use to stay out of the user's home.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

APP = "sparktop"
_CHECKED: dict[Path, Path] = {}
"""Each default directory, checked once: itself, or its stand-in under the temp dir."""


def _writable(path: Path, kind: str) -> Path:
    """`path`, or a temp stand-in when it cannot be written (a read-only home, as in a
    Kubernetes debug container); says so once on stderr."""
    if path in _CHECKED:
        return _CHECKED[path]
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    chosen = path
    if not os.access(existing, os.W_OK):
        base = Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"
        chosen = base / kind
        if not _CHECKED or all(v == k for k, v in _CHECKED.items()):
            print(f"sparktop: warning: {existing} is not writable (read-only home?): "
                  f"state and data go to {base} for this run", file=sys.stderr)  # fmt: skip
    _CHECKED[path] = chosen
    return chosen


def _xdg(env: str, fallback: str) -> Path:
    value = os.environ.get(env, "")
    # The XDG spec says relative paths are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_dir() -> Path:
    """Directory of config.yaml, user themes and user catalog entries."""
    override = os.environ.get("SPARKTOP_CONFIG_DIR")
    return Path(override) if override else _xdg("XDG_CONFIG_HOME", ".config") / APP


def state_dir() -> Path:
    """Directory of state that must survive restarts (UI choices, managed servers, logs)."""
    override = os.environ.get("SPARKTOP_STATE_DIR")
    if override:
        return Path(override)
    return _writable(_xdg("XDG_STATE_HOME", ".local/state") / APP, "state")


def data_dir() -> Path:
    """Directory of kept data (benchmark results, download records)."""
    override = os.environ.get("SPARKTOP_DATA_DIR")
    if override:
        return Path(override)
    return _writable(_xdg("XDG_DATA_HOME", ".local/share") / APP, "data")


def default_config_file() -> Path:
    return config_dir() / "config.yaml"


def shipped_dir(package: str, checkout_folder: str) -> Path:
    """A folder of shipped YAML (themes, catalog): `sparktop/<package>` when installed, else
    the checkout's top-level `<checkout_folder>` (tui/ is the source root, so two levels up)."""
    here = Path(__file__).parent  # not resolved: an editable link tree points into tui/
    installed = here / package
    if installed.is_dir():
        return installed
    return here.resolve().parent.parent / checkout_folder
