"""Notice edited catalog files and load the catalog again (the TUI stays open for days).

`CatalogWatch.changed()` only stats the catalog folders' YAML files (no file is read), so it
can run at every refresh; the catalog is loaded again only when a file changed, appeared or
went. A load that brings new problems is not used: the catalog in use stays, and the
problems come back one line each for the view to show.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparktop.catalog.loader import Catalog
    from sparktop.control import Control

Stamp = tuple[tuple[str, int, int, int], ...]
SUFFIXES = (".yaml", ".yml")


def stamp(dirs: Iterable[Path]) -> Stamp:
    """(path, mtime, size, inode) of every catalog file in `dirs`: what tells an edit."""
    found = []
    for directory in dirs:
        try:
            entries = list(os.scandir(directory))
        except OSError:  # not there (yet): no files
            continue
        for entry in entries:
            if not entry.name.endswith(SUFFIXES):
                continue
            try:
                st = entry.stat()
            except OSError:  # removed between the listing and the stat
                continue
            found.append((entry.path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(sorted(found))


@dataclass(frozen=True)
class Reload:
    """What loading the edited catalog did."""

    applied: bool
    """False: the edit brought problems, the catalog loaded before stays in use."""
    errors: tuple[str, ...] = ()
    """The problems of the edited files, one line each."""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    models: int = 0

    def message(self) -> str:
        """One line for the view: what changed, or that the edit was not used."""
        if not self.applied:
            count = len(self.errors)
            return f"catalog edit not used ({count} problem{'s' if count != 1 else ''}): " + (
                "the models loaded before stay"
            )
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        return f"catalog reloaded ({self.models} models)" + (
            ": " + "; ".join(parts) if parts else ""
        )


class CatalogWatch:
    """Watches the catalog folders; make it before the catalog is first read."""

    def __init__(self, dirs: Iterable[Path] | None = None) -> None:
        from sparktop.catalog.loader import catalog_dirs

        self.dirs = list(dirs) if dirs is not None else catalog_dirs()
        self._seen = stamp(self.dirs)

    def changed(self) -> bool:
        """True once after any catalog file was written, created, replaced or removed."""
        now = stamp(self.dirs)
        if now == self._seen:
            return False
        self._seen = now
        return True

    def reload(self, control: Control) -> Reload:
        """Load the catalog again; use it unless it has problems the one in use had not."""
        from sparktop.catalog.loader import load_catalog

        current = control.catalog
        try:
            fresh = load_catalog(self.dirs)
        except Exception as exc:  # what the loader raises: its text, a line per problem
            return Reload(False, tuple(str(exc).splitlines() or [type(exc).__name__]))
        if any(problem not in current.errors for problem in fresh.errors):
            return Reload(False, tuple(fresh.errors))
        control.use_catalog(fresh)
        return _difference(current, fresh)


def _difference(before: Catalog, after: Catalog) -> Reload:
    old, new = before.entries, after.entries
    return Reload(
        True,
        tuple(after.errors),
        added=tuple(name for name in new if name not in old),
        removed=tuple(name for name in old if name not in new),
        changed=tuple(name for name in new if name in old and new[name] != old[name]),
        models=len(new),
    )
