"""Memory panel: the unified pool as it really is (GPU / other / cache / free) with history."""

from __future__ import annotations

from textual.content import Content

from sparktop.history import History, chart, sparkline
from sparktop.memview import bar_cells, memory_shares
from sparktop.snapshot import Snapshot
from sparktop.ui.widgets.panel import SnapshotPanel, rows_at
from sparktop.units import fmt_bytes, fmt_duration

STYLE = {"gpu": "$mem-gpu", "other": "$mem-other", "cache": "$mem-cache", "free": "$mem-free"}
CHAR = {"gpu": "█", "other": "█", "cache": "▓", "free": "░"}
SPARK_SAMPLES = 60
CHART_ROWS = 10  # taller charts cost repaints without telling more
CHART_SECONDS_PER_COLUMN = 5.0
"""The wide chart moves once per column (not per sample): 5 s a column shows ~10 minutes at
160 columns and redraws a fifth as often."""
SHORT = {"gpu": "GPU", "other": "other", "cache": "cache", "free": "free"}


class MemoryPanel(SnapshotPanel):
    """Shows total/used/available/cache/swap, one stacked bar and the used-% history: a
    sparkline of the last minute, or in a tall box a chart of the last minutes."""

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
        self.fill = False
        """When the panel has a fixed, tall box (wide layout), draw a full history chart."""
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
        head = Content.assemble(
            ("Used ", "bold"),
            f"{fmt_bytes(mem.used_bytes)} ",
            (f"({mem.used_percent:.0f}%)", "$text-muted"),
            ("  of ", "$text-muted"),
            f"{fmt_bytes(mem.total_bytes)}",
            ("   Available ", "bold"),
            f"{fmt_bytes(mem.available_bytes)}",
        )
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
        lines = [head, bar, legend, swap, *hints]
        if self.fill:
            used_rows = sum(rows_at(line, width) for line in lines)
            rows = min(CHART_ROWS, height - used_rows - 2)
            if rows >= 3:
                # The chart holds the history here; a sparkline beside Swap would repeat
                # its last minute and redraw its line every second while it fills.
                return lines + self._chart(width, rows)
        trend = swap + self._sparkline(width - swap.cell_length)
        return [head, bar, legend, trend, *hints]

    def _sparkline(self, room: int) -> Content:
        """Up to the last 60 samples of used %, with a label naming the span it can hold
        (fixed, so the line does not redraw every second while history fills)."""
        spark_width = min(SPARK_SAMPLES, max(0, room - len("  used % over 00m 00s ")))
        label = f"  used %, last {fmt_duration(spark_width * self.interval)} "
        return Content.assemble(
            (label, "$text-muted"),
            (sparkline(self.history.values(), spark_width), "$accent"),
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
