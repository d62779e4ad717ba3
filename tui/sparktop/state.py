"""Small JSON state files under the state dir, written atomically.

A missing or corrupt file reads as empty (with the problem kept in `.problem` for the UI
to show); a failed write leaves the previous file in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.atomic import set_aside, write_json_atomic


class StateFile:
    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.path = (directory or paths.state_dir()) / name
        self.problem: str | None = None
        self._damaged = False

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.problem = f"{self.path}: unreadable state ({exc}); using defaults"
            self._damaged = not isinstance(exc, PermissionError)
            return {}
        if not isinstance(data, dict):
            self.problem = f"{self.path}: unexpected content; using defaults"
            self._damaged = True
            return {}
        return data

    def update(self, **changes: Any) -> bool:
        """Merge `changes` into the file; False (and `.problem` set) when it cannot be written."""
        data = self.load()
        data.update(changes)
        try:
            if self._damaged and set_aside(self.path) is not None:
                self._damaged = False
            write_json_atomic(self.path, data)
        except OSError as exc:
            self.problem = f"cannot save {self.path}: {exc.strerror or exc}"
            return False
        return True
