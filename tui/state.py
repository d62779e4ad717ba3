"""Small JSON state files under the state dir, written atomically.

A missing or corrupt file reads as empty (with the problem kept in `.problem` for the UI
to show); a failed write leaves the previous file in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.atomic import write_json_atomic


class StateFile:
    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.path = (directory or paths.state_dir()) / name
        self.problem: str | None = None

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.problem = f"{self.path}: unreadable state ({exc}); using defaults"
            return {}
        if not isinstance(data, dict):
            self.problem = f"{self.path}: unexpected content; using defaults"
            return {}
        return data

    def update(self, **changes: Any) -> bool:
        """Merge `changes` into the file; False (and `.problem` set) when it cannot be written."""
        data = self.load()
        data.update(changes)
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            self.problem = f"cannot save {self.path}: {exc.strerror or exc}"
            return False
        return True
