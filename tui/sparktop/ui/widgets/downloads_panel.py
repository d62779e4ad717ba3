"""The downloads table: one row per download (and per file being fetched), plus downloads
started elsewhere; `x` cancels the selected one (its partial files stay for resume)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.message import Message

from sparktop.downloads.states import ACTIVE, WAITING
from sparktop.snapshot import DownloadInfo, ExternalDownloadInfo
from sparktop.ui.widgets.fit_columns import SCROLLBAR, content_widths, fit_columns
from sparktop.ui.widgets.live_table import LiveTable
from sparktop.units import fmt_bytes, fmt_duration

COLUMNS = ("DOWNLOAD", "STATE", "PROGRESS", "BYTES", "SPEED", "ETA")
IMPORTANCE = ("DOWNLOAD", "STATE", "PROGRESS", "ETA", "SPEED", "BYTES")
"""Columns by what a narrow window keeps longest (BYTES goes first, then SPEED)."""
KEEP = 3
BAR = 16


def progress_bar(percent: float | None) -> str:
    if percent is None:
        return "?" * 3
    filled = round(BAR * max(0.0, min(100.0, percent)) / 100)
    return "█" * filled + "░" * (BAR - filled) + f" {percent:5.1f}%"


def _row(name: str, state: str, percent: float | None, done: int, total: int | None,
         speed: float, eta: float | None) -> tuple[str, ...]:  # fmt: skip
    return (
        name,
        state or "?",
        progress_bar(percent),
        f"{fmt_bytes(done)} / {fmt_bytes(total)}" if total else fmt_bytes(done),
        f"{fmt_bytes(int(speed))}/s" if speed else "–",
        fmt_duration(eta) if eta is not None else "–",
    )


def rows_for(
    records: list[DownloadInfo | ExternalDownloadInfo],
) -> list[tuple[str, tuple[str, ...]]]:
    """(row key, cells) for every download, with the files in flight under their download."""
    out = []
    for r in records:
        if isinstance(r, ExternalDownloadInfo):  # started elsewhere
            name = f"{r.repo or '?'}: {r.file or r.path} (elsewhere)"
            cells = _row(
                name, r.state, r.percent, r.done_bytes, r.total_bytes, r.speed_bps, r.eta_s
            )
            out.append((f"ext:{r.path}", cells))
            continue
        cells = _row(r.repo, r.state, r.percent, r.done_bytes, r.total_bytes, r.speed_bps, r.eta_s)
        out.append((r.id, cells))
        if r.state in ACTIVE:
            for f in r.files:
                if f.state in ACTIVE:
                    name = (
                        f"  {f.path} ({f.note})" if f.state == WAITING and f.note else f"  {f.path}"
                    )
                    cells = _row(name, f.state, f.percent, f.done_bytes, f.size,
                                 f.speed_bps, f.eta_s)  # fmt: skip
                    out.append((f"{r.id}:{f.path}", cells))
    return out


class DownloadsTable(LiveTable):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "cancel_download", "Cancel download"),
    ]
    DEFAULT_CSS = "DownloadsTable { height: auto; max-height: 100%; }"

    class CancelRequested(Message):
        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._rows: dict[str, tuple[str, ...]] = {}
        self._records: list[DownloadInfo | ExternalDownloadInfo] = []
        self.columns_shown: tuple[str, ...] = COLUMNS
        """The columns that fit the width (no sideways scrollbar taking a row at 80×24)."""
        self._fitted_for = 0

    def on_mount(self) -> None:
        for column in self.columns_shown:
            self.add_column(column, key=column)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._fitted_for:
            self.show(self._records)

    def _fit(self, rows: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        room = self.size.width - SCROLLBAR
        if room <= 0:  # not laid out yet (the box is hidden until a download shows)
            return self.columns_shown
        self._fitted_for = self.size.width
        widths = content_widths(COLUMNS, rows.values())
        return fit_columns(COLUMNS, widths, IMPORTANCE, KEEP, room)

    def show(self, records: list[DownloadInfo | ExternalDownloadInfo]) -> None:
        self._records = records
        every = dict(rows_for(records))
        columns = self._fit(every)
        if columns != self.columns_shown:
            self.clear(columns=True)
            self._rows = {}
            self.columns_shown = columns
            self.on_mount()
        index = [COLUMNS.index(name) for name in columns]
        wanted = {key: tuple(cells[i] for i in index) for key, cells in every.items()}
        if list(wanted) != list(self._rows):  # rows came or went: rebuild in order
            self.clear()
            for key, cells in wanted.items():
                self.add_row(*cells, key=key)
        else:
            for key, cells in wanted.items():
                old = self._rows[key]
                for column, new, before in zip(columns, cells, old, strict=True):
                    if new != before:
                        self.update_cell(key, column, new)
        self._rows = wanted
        self.fit_widths()

    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value

    def action_cancel_download(self) -> None:
        key = self.selected_key()
        if key and not key.startswith("ext:"):
            self.post_message(self.CancelRequested(key.split(":", 1)[0]))
