"""Memory panel: the unified pool as it really is (GPU / other / cache / free) with history."""

from __future__ import annotations

from textual.content import Content

from sparktop.history import History, chart, sparkline
from sparktop.memview import bar_cells, memory_shares
from sparktop.snapshot import Snapshot
from sparktop.ui.widgets.panel import SnapshotPanel, rows_at
from sparktop.units import fmt_bytes, fmt_duration

TREND_MIN = 8
"""Fewest samples worth a sparkline on the Used line."""
TREND_LABEL = "   used % "
STYLE = {"gpu": "$mem-gpu", "other": "$mem-other", "cache": "$mem-cache", "free": "$mem-free"}
CHAR = {"gpu": "█", "other": "█", "cache": "▓", "free": "░"}
SPARK_SAMPLES = 60
CHART_SECONDS_PER_COLUMN = 5.0
"""The wide chart moves once per column (not per sample): 5 s a column shows ~10 minutes at
160 columns and redraws a fifth as often."""
SHORT = {"gpu": "GPU", "other": "other", "cache": "cache", "free": "free"}


class MemoryPanel(SnapshotPanel):
    """Shows total/used/available/cache/swap, one stacked bar and the used-% history: a
    sparkline of the last minute beside the used figure, or, when the screen gives it
    `chart_rows`, a chart of the last minutes."""

    DEFAULT_CSS = """
    MemoryPanel {
        height: auto;
        border: round $primary 60%;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 1;
    }
    """

    def __init__(self, history_size: int = 1200, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.history = History(history_size)
        self.interval = 1.0
        self.chart_rows = 0
        """Rows the screen gives the history chart (ui/layout.py); 0: a sparkline."""
        self._chart_lines = 0
        self.border_title = "Memory"
        self._chart_cache: tuple[tuple[int, ...], list[Content]] | None = None

    def record(self, snapshot: Snapshot) -> None:
        if snapshot.memory is not None:
            self.history.add(snapshot.memory.used_percent)
        title = "Memory · unified CPU+GPU" if snapshot.unified else "Memory"
        if self.border_title != title:
            self.border_title = title

    def build(self, width: int, height: int) -> list[Content]:
        snap = self.snapshot
        if snap is None:
            return [Content("reading /proc/meminfo …")]
        mem = snap.memory
        if mem is None:
            return [Content.assemble((snap.memory_error or "memory unknown", "$error"))]
        used = Content.assemble(
            ("Used ", "bold"),
            f"{fmt_bytes(mem.used_bytes)} ",
            (f"({mem.used_percent:.0f}%)", "$text-muted"),
            ("  of ", "$text-muted"),
            f"{fmt_bytes(mem.total_bytes)}",
        )
        available = Content.assemble(("   Available ", "bold"), f"{fmt_bytes(mem.available_bytes)}")
        shares = [s for s in memory_shares(snap) if snap.unified or s.key != "gpu"]
        bar = Content.assemble(
            *[(CHAR[key] * cells, STYLE[key]) for key, cells in bar_cells(shares, width)]
        )
        legend_parts: list[tuple[str, str] | str] = []
        for share in shares:
            legend_parts += [
                (CHAR[share.key] + " ", STYLE[share.key]),
                f"{SHORT[share.key]} {fmt_bytes(share.bytes)}   ",
            ]
        legend = Content.assemble(*legend_parts)
        swap = Content.assemble(
            ("Swap ", "bold"),
            f"{fmt_bytes(mem.swap_used_bytes)} / {fmt_bytes(mem.swap_total_bytes)}",
        )
        hints = []
        for hint in snap.hints:
            text = f"⚠ {hint.message}"
            if hint.command:
                text += f": {hint.command}"
            hints.append(Content.assemble((text, "$warning")))
        if self.chart_rows:
            # The chart holds the history; a sparkline too would repeat its last minute.
            lines = [used + available, bar, legend, swap, *hints]
            chart = self._chart(width, self.chart_rows)
            self._chart_lines = len(chart)
            return lines + chart
        self._chart_lines = 0
        trend = self._sparkline(width - used.cell_length - available.cell_length)
        return [used + available + trend, bar, legend, swap, *hints]

    def needed_rows(self, lines: list[Content], width: int) -> int:
        """The rows of the text alone: the chart takes what the screen gives it."""
        return sum(rows_at(line, width) for line in lines[: len(lines) - self._chart_lines])

    def _sparkline(self, room: int) -> Content:
        """Up to the last 60 samples of used %, on the Used line it is the history of, with
        the span it can hold (fixed, so the line does not move while history fills);
        nothing when fewer than TREND_MIN samples would fit."""
        spark_width = min(SPARK_SAMPLES, room - len(TREND_LABEL))
        span = ""
        while spark_width >= TREND_MIN:
            span = f" {fmt_duration(spark_width * self.interval)}"
            if len(TREND_LABEL) + spark_width + len(span) <= room:
                break
            spark_width -= len(TREND_LABEL) + spark_width + len(span) - room
        if spark_width < TREND_MIN:
            return Content("")
        return Content.assemble(
            (TREND_LABEL, "$text-muted"),
            (sparkline(self.history.values(), spark_width), "$accent"),
            (span, "$text-muted"),
        )

    def _chart(self, width: int, rows: int) -> list[Content]:
        """The history chart's lines, built again only when a column completes or the box
        changes, not at every refresh."""
        per = max(1, round(CHART_SECONDS_PER_COLUMN / max(self.interval, 0.001)))
        key = (self.history.count // per, per, width, rows)
        if self._chart_cache is not None and self._chart_cache[0] == key:
            return self._chart_cache[1]
        values = self.history.columns(per)
        peak = max(values, default=0.0)
        per_column = fmt_duration(per * self.interval)
        lines = [
            Content(""),
            Content.assemble(
                ("used % history", "bold"),
                (f"  peak {peak:.0f}% · 100% at top · one column per {per_column}", "$text-muted"),
            ),
            # one multi-row line: the chart redraws as one widget, not ten
            Content.assemble(("\n".join(chart(values, width, rows)), "$mem-other")),
        ]
        self._chart_cache = (key, lines)
        return lines
