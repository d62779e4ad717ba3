"""Plain-text tables that fit a width, as `sparktop status` does its servers: the least
important columns are left out first, in a given order; the last column, free text, wraps
onto indented lines. A name, number or path is never cut."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

WRAP_MIN = 20
"""The free-text column counts at most this wide when columns are chosen; with less room
than this it goes onto indented lines of its own below the row."""
BELOW = "    "
"""Indent of free text put below its row."""


def terminal_width() -> int:
    """COLUMNS, else the terminal's width, else 80."""
    return shutil.get_terminal_size((80, 24)).columns


def wrap(
    text: str, width: int | None, indent: str = "  ", first: str | None = None, *,
    words: bool = False,
) -> list[str]:  # fmt: skip
    """`text` on lines no wider than `width` (None: one line), broken at spaces only (with
    `words`, free text such as a model's reply: inside a word too), the first line starting
    with `first` (default `indent`), the others with `indent`."""
    first = indent if first is None else first
    if width is None or len(first) + len(text) <= width:
        return [first + text]
    return textwrap.wrap(text, max(10, width), initial_indent=first, subsequent_indent=indent,
                         break_long_words=words, break_on_hyphens=False) or [first]  # fmt: skip


def fit_lines(lines: list[str], width: int | None) -> list[str]:
    """Each line too wide for `width` wrapped at spaces, going on under its own indent plus
    four spaces (a URL, a name or a number is never broken)."""
    out: list[str] = []
    for line in lines:
        lead = line[: len(line) - len(line.lstrip(" "))]
        out += wrap(line.strip(), width, lead + "    ", lead) if line.strip() else [line]
    return out


def hang(prefix: str, text: str, width: int | None, below: str = BELOW) -> list[str]:
    """`prefix` then `text`, wrapped under the text's first column; where a word of it
    would still be too wide there, the text goes on lines of its own indented by `below`."""
    lines = wrap(text, width, " " * len(prefix), prefix)
    if width is None or all(len(line) <= width for line in lines):
        return [line.rstrip() for line in lines]
    return [prefix.rstrip(), *wrap(text, width, below)]


@dataclass
class Fitted:
    groups: list[list[str]]
    """The lines of the header, then of each row (more than one where free text wraps)."""
    left_out: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [line for group in self.groups for line in group]

    def note(self, width: int | None) -> list[str]:
        """The line saying which columns were left out (none: no line)."""
        if not self.left_out:
            return []
        text = f"left out at {width} columns: {', '.join(self.left_out)}; --json has all"
        return wrap(text, width, "    ", "  ")


def fit_table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: set[str] | frozenset[str] = frozenset(),
    width: int | None = None,
    drop: Sequence[str] = (),
    free: str | None = None,
) -> Fitted:
    """Each column as wide as its widest cell, numbers (`right`) to the right. With a
    `width`: the columns of `drop` are left out, in order, until the table fits; then the
    `free` column (the last one) wraps within what is left, or goes below its row."""
    widths = {name: max(len(c) for c in col) for name, col in zip(head, zip(head, *rows))}  # noqa: B905
    shown = list(head)

    def planned(name: str) -> int:
        return min(widths[name], WRAP_MIN) if name == free else widths[name]

    def total() -> int:
        return sum(planned(n) for n in shown) + 2 * (len(shown) - 1)

    if width is not None:
        for name in drop:
            if total() <= width:
                break
            if name in shown:
                shown.remove(name)
    index = [list(head).index(name) for name in shown]
    groups: list[list[str]] = []
    for cells in (head, *rows):
        lines: list[str] = []
        groups.append(lines)
        parts = [cells[i].rjust(widths[n]) if n in right else cells[i].ljust(widths[n])
                 for n, i in zip(shown, index)]  # noqa: B905  # fmt: skip
        if free is None or shown[-1] != free or width is None:
            lines.append("  ".join(parts).rstrip())
            continue
        start = sum(widths[n] + 2 for n in shown[:-1])
        text = cells[index[-1]]
        if width - start >= WRAP_MIN or start + len(text) <= width:
            first = "  ".join(parts[:-1]) + "  "
            lines += [ln.rstrip() for ln in wrap(text, width, " " * start, first)]
        else:
            lines.append("  ".join(parts[:-1]).rstrip())
            if text:
                lines += wrap(text, width, BELOW)
    return Fitted(groups, [name for name in head if name not in shown])
