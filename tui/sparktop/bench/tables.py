"""Kept runs as plain text, the same in both faces: the history list (`sparktop results`, the
bench screen's table) and two runs side by side with the deltas of B against A."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sparktop.textfit import fit_table, wrap

HISTORY_COLUMNS = ("RUN", "DATE", "MODEL", "KIND", "PROMPT", "GEN", "REPS", "PP t/s", "TG t/s",
                   "TTFT", "NOTE")  # fmt: skip
RIGHT = {"RUN", "PROMPT", "GEN", "REPS", "PP t/s", "TG t/s", "TTFT"}
"""Columns of numbers, aligned to the right."""


def date_text(when: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "–"


def _num(value: Any) -> str:
    return "–" if value is None else str(value)


def _tps(value: float | None) -> str:
    return f"{value:.1f}" if value else "–"


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds else "–"


def history_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """One kept run as the cells of HISTORY_COLUMNS."""
    return (
        str(row["id"]), date_text(row["time"]), row["model"], row["kind"],
        _num(row["prompt_tokens"]), _num(row["gen_tokens"]), _num(row["repetitions"]),
        _tps(row["prefill_tps"]), _tps(row["decode_tps"]), _ms(row["ttft_s"]),
        f"noisy: {row['noisy']}" if row.get("noisy") else "",
    )  # fmt: skip


HISTORY_DROP = ("REPS", "GEN", "PROMPT", "KIND", "TTFT", "DATE")
"""Left out in this order until `sparktop results` fits the width: the run, model and
figures stay; NOTE (free text) wraps."""


def history_lines(
    rows: Sequence[dict[str, Any]], model: str | None = None, width: int | None = None
) -> list[str]:
    """`sparktop results [--model M]`: the kept runs, newest first, under a header, fitting
    `width` (None: every column, as wide as its cells)."""
    if not rows and model:
        return [f"no kept runs of model {model!r} (sparktop results lists them all)"]
    if not rows:
        return ["no kept runs yet (sparktop bench NAME keeps one)"]
    fitted = fit_table(HISTORY_COLUMNS, [history_cells(row) for row in rows], right=RIGHT,
                       width=width, drop=HISTORY_DROP, free="NOTE")  # fmt: skip
    return fitted.lines + fitted.note(width)


# -- compare ------------------------------------------------------------------------------

Show = Callable[[Any], str]
FIGURES: tuple[tuple[str, str, Show, Show], ...] = (
    # key, label, value as text, delta as text
    ("prefill_tps", "Prefill", lambda v: f"{v:.1f} t/s", lambda d: f"{d:+.1f} t/s"),
    ("decode_tps", "Decode", lambda v: f"{v:.1f} t/s", lambda d: f"{d:+.1f} t/s"),
    ("ttft_s", "Time to first token", lambda v: f"{v * 1000:.0f} ms",
     lambda d: f"{d * 1000:+.0f} ms"),
    ("server_prefill_tps", "Prefill (server's timing)", lambda v: f"{v:.1f} t/s",
     lambda d: f"{d:+.1f} t/s"),
    ("server_decode_tps", "Decode (server's timing)", lambda v: f"{v:.1f} t/s",
     lambda d: f"{d:+.1f} t/s"),
)  # fmt: skip
FACTS = (
    ("time", "Date"), ("model", "Model"), ("quant", "Quant"), ("engine", "Engine"),
    ("kind", "Kind"), ("prompt_tokens", "Prompt tokens"), ("gen_tokens", "Generated tokens"),
    ("repetitions", "Repetitions"),
)  # fmt: skip
LONG = (("noisy", "Noisy (standard deviation above 20 % of the median)"),
        ("serve_flags", "Serve flags"), ("host", "Host"), ("hardware", "Hardware"),
        ("sparktop_version", "sparktop version"))  # fmt: skip
"""Facts too long for a column: each run's value on a line of its own."""


def _fact(key: str, value: Any) -> str:
    if key == "time":
        return date_text(value)
    if key == "noisy":
        return value or "no"
    return "–" if value in (None, "") else str(value)


def compare_lines(comparison: dict[str, Any], width: int | None = None) -> tuple[str, list[str]]:
    """A title and the lines of two runs side by side (A then B, as the user chose them),
    each figure with the delta of B against A. A fact too wide for `width` (None: no limit)
    goes below the table, each run's value on a line of its own, wrapped at spaces."""
    a, b, deltas = comparison["a"], comparison["b"], comparison["delta"]
    head = ("", f"A: run {a['id']}", f"B: run {b['id']}", "B against A")
    facts = [(label, _fact(key, a.get(key)), _fact(key, b.get(key)), "")
             for key, label in FACTS]  # fmt: skip
    figures = []
    for key, label, value, change in FIGURES:
        va, vb, delta = a.get(key), b.get(key), deltas.get(key)
        text = ""
        if delta is not None:
            pct = f" ({delta['pct']:+.1f} %)" if delta["pct"] is not None else ""
            text = change(delta["abs"]) + pct
        figures.append((label, "–" if va is None else value(va),
                        "–" if vb is None else value(vb), text))  # fmt: skip
    right = {head[1], head[2], head[3]}
    below: list[tuple[str, str, str, str]] = []
    lines = fit_table(head, facts + figures, right=right).lines
    while width is not None and facts and max(map(len, lines)) > width:
        widest = max(facts, key=lambda row: max(len(row[1]), len(row[2])))
        facts.remove(widest)
        below.append(widest)
        lines = fit_table(head, facts + figures, right=right).lines
    labels = [label for _, label in FACTS]
    below.sort(key=lambda row: labels.index(row[0]))
    long = [(label, _fact(key, a.get(key)), _fact(key, b.get(key))) for key, label in LONG]
    for label, va, vb, *_ in below + long:
        lines += ["", *wrap(label, width, "", "")]
        lines += wrap(va, width, "     ", "  A: ") + wrap(vb, width, "     ", "  B: ")
    return f"run {a['id']} (A) against run {b['id']} (B)", lines
