"""Which columns of a table fit its width: the important ones first, the rest while room
is left, shown in the table's own order.

Worked out on a resize or when rows come, go or outgrow their column, never per frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.cells import cell_len

CELL_PADDING = 2
"""A DataTable cell's padding, one cell each side."""
SCROLLBAR = 2
"""Room kept for the vertical scrollbar, so columns do not come and go with it."""


def content_widths(columns: Sequence[str], rows: Iterable[Sequence[str]],
                   extra: Mapping[str, int] | None = None) -> dict[str, int]:  # fmt: skip
    """Each column's widest cell or label (plus `extra` cells, a sort mark)."""
    widths = {name: len(name) + (extra or {}).get(name, 0) for name in columns}
    for row in rows:
        for name, cell in zip(columns, row, strict=False):
            widths[name] = max(widths[name], cell_len(str(cell)))
    return widths


def fit_columns(columns: Sequence[str], widths: Mapping[str, int], importance: Sequence[str],
                keep: int, room: int) -> tuple[str, ...]:  # fmt: skip
    """The columns shown in `room` cells: the first `keep` of `importance` always (the table
    scrolls if even they do not fit), then the others in order of importance while they
    fit; columns not named in `importance` come last."""
    ranked = [name for name in importance if name in columns]
    ranked += [name for name in columns if name not in ranked]
    chosen: set[str] = set()
    used = 0
    for rank, name in enumerate(ranked):
        need = widths.get(name, len(name)) + CELL_PADDING
        if rank < keep or used + need <= room:
            chosen.add(name)
            used += need
    return tuple(name for name in columns if name in chosen)
