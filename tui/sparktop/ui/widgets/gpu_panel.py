"""GPU panel: per GPU utilisation, temperature, power, memory (unified where it is) and
the processes that hold GPU memory."""

from __future__ import annotations

from textual.content import Content

from sparktop.history import History, sparkline
from sparktop.snapshot import GpuInfo, Snapshot
from sparktop.ui.widgets.panel import SnapshotPanel
from sparktop.units import fmt_bytes, fmt_percent


def _meter(percent: float | None, width: int) -> Content:
    if percent is None or width <= 0:
        return Content(" " * max(0, width))
    filled = round(max(0.0, min(100.0, percent)) / 100 * width)
    return Content.assemble(("█" * filled, "$accent"), ("·" * (width - filled), "$text-muted"))


class GpuPanel(SnapshotPanel):
    """Renders every GPU of the latest snapshot, or why there is none."""

    DEFAULT_CSS = """
    GpuPanel {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, history_size: int = 60, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.histories: dict[int, History] = {}
        self.history_size = history_size

    def record(self, snapshot: Snapshot) -> None:
        for gpu in snapshot.gpus:
            history = self.histories.setdefault(gpu.index, History(self.history_size))
            if gpu.utilization_percent is not None:
                history.add(gpu.utilization_percent)

    def build(self, width: int, height: int) -> list[Content]:
        snap = self.snapshot
        if snap is None:
            return [Content("looking for GPUs …")]
        if not snap.gpus:
            return [
                Content.assemble(
                    ("No GPU visible: ", "bold $warning"), (snap.gpu_unavailable_reason or "", "")
                ),
                Content.assemble(("Everything else in sparktop still works.", "$text-muted")),
            ]
        return [line for gpu in snap.gpus for line in self._gpu(gpu, snap, width)]

    def _gpu(self, gpu: GpuInfo, snap: Snapshot, width: int) -> list[Content]:
        tag = " unified" if gpu.unified else ""
        title = Content.assemble(
            (f"{gpu.index} ", "bold"),
            (gpu.name, "bold $primary"),
            (tag, "$accent"),
        )
        temp = f"{gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "—"
        power = "—" if gpu.power_w is None else f"{gpu.power_w:.0f} W"
        if gpu.power_w is not None and gpu.power_limit_w:
            power += f" / {gpu.power_limit_w:.0f} W"
        history = self.histories.get(gpu.index)
        util_text = f"{fmt_percent(gpu.utilization_percent):>4} "
        fixed = len("util ") + len(util_text) + 10 + len(f"  temp {temp}  power {power}  ")
        spark_width = min(60, max(0, width - fixed))
        util = Content.assemble(
            ("util ", "bold"),
            util_text,
            _meter(gpu.utilization_percent, 10),
            ("  temp ", "bold"),
            temp,
            ("  power ", "bold"),
            power,
            "  ",
            (sparkline(history.values() if history else [], spark_width), "$accent"),
        )
        lines = [title, util, self._memory_line(gpu, snap)]
        if gpu.error:
            lines.append(Content.assemble(("⚠ " + gpu.error, "$error")))
        if gpu.processes:
            name_width = max(8, min(32, width - 24))
            lines.append(
                Content.assemble(
                    (
                        f"{'PID':>8}  {'PROCESS':<{name_width}} {'GPU MEMORY':>11}",
                        "bold $text-muted",
                    )
                )
            )
            for proc in gpu.processes:
                name = (proc.name or "?")[:name_width]
                lines.append(
                    Content(f"{proc.pid:>8}  {name:<{name_width}} {fmt_bytes(proc.used_bytes):>11}")
                )
        return lines

    @staticmethod
    def _memory_line(gpu: GpuInfo, snap: Snapshot) -> Content:
        used, total = gpu.memory_used_bytes, gpu.memory_total_bytes
        if total is None:
            return Content.assemble(("mem  ", "bold"), ("unknown", "$text-muted"))
        share = f" ({100 * used / total:.0f}%)" if used is not None and total else ""
        line = Content.assemble(
            ("mem  ", "bold"), f"{fmt_bytes(used)} of {fmt_bytes(total)}{share}"
        )
        if gpu.unified and gpu.memory_source == "system+processes":
            available = snap.memory.available_bytes if snap.memory else None
            note = f"  unified pool · {fmt_bytes(available)} available"
            line = Content.assemble(line, (note, "$text-muted"))
        elif gpu.unified and gpu.memory_source == "gtt":
            line = Content.assemble(line, ("  unified · GTT", "$text-muted"))
        return line
