"""Benchmark results in SQLite (`<data>/bench.sqlite3`): kept, compared, exported."""

from __future__ import annotations

import csv
import io
import json
import logging
import platform
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparktop import __version__, paths
from sparktop.atomic import set_aside
from sparktop.probes.system import SystemProbe
from sparktop.units import fmt_bytes

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    model TEXT NOT NULL,
    quant TEXT,
    engine TEXT,
    serve_flags TEXT,
    host TEXT,
    hardware TEXT,
    sparktop_version TEXT,
    kind TEXT NOT NULL,            -- "api" | "llama-bench"
    prompt_tokens INTEGER,
    gen_tokens INTEGER,
    repetitions INTEGER,
    prefill_tps REAL,
    decode_tps REAL,
    ttft_s REAL,
    server_prefill_tps REAL,
    server_decode_tps REAL,
    detail TEXT,                   -- the whole result as JSON
    noisy TEXT                     -- the figures whose stdev > 20 % of the median, or NULL
);
CREATE TABLE IF NOT EXISTS champions (
    mode TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    time REAL NOT NULL,
    reason TEXT
);
"""
COLUMNS = (
    "id", "time", "model", "quant", "engine", "serve_flags", "host", "hardware",
    "sparktop_version", "kind", "prompt_tokens", "gen_tokens", "repetitions", "prefill_tps",
    "decode_tps", "ttft_s", "server_prefill_tps", "server_decode_tps", "noisy",
)  # fmt: skip
ADDED = {"noisy": "TEXT"}
"""Columns newer than the first schema: added to a store kept by an older sparktop."""


class ResultStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.data_dir() / "bench.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.problem: str | None = None
        try:
            self._create()
        except sqlite3.DatabaseError as exc:  # not a database (truncated, overwritten)
            kept = set_aside(self.path)
            if kept is None:
                raise
            self.problem = f"{self.path}: unreadable ({exc}); kept as {kept.name}, starting anew"
            logging.getLogger("sparktop").warning("%s", self.problem)
            self._create()

    def _create(self) -> None:
        """The tables, and the columns a store kept by an older sparktop lacks."""
        with self._connect() as db:
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for name, kind in ADDED.items():
                if name not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def add(self, **values: Any) -> int:
        if "hardware" not in values:
            values["hardware"] = hardware_summary()
        values.setdefault("time", time.time())
        values.setdefault("host", platform.node())
        values.setdefault("sparktop_version", __version__)
        if isinstance(values.get("detail"), dict | list):
            values["detail"] = json.dumps(values["detail"])
        keys = [k for k in values if k in COLUMNS or k == "detail"]
        with self._connect() as db:
            cursor = db.execute(
                f"INSERT INTO runs ({', '.join(keys)}) VALUES ({', '.join('?' for _ in keys)})",
                [values[k] for k in keys],
            )
            return int(cursor.lastrowid or 0)

    def add_api(
        self,
        result: Any,
        *,
        engine: str | None,
        quant: str | None = None,
        serve_flags: str | None = None,
        detail: Any = None,
        noisy: str | None = None,
    ) -> int:
        """Keep an API benchmark (sparktop.bench.api.ApiResult): its medians, whether it is
        noisy (`noisy`, else the result's own verdict) and all of it."""
        summary = result.summary()
        return self.add(
            model=result.model, quant=quant, engine=engine, serve_flags=serve_flags,
            kind="api", prompt_tokens=result.prompt_tokens, gen_tokens=result.gen_tokens,
            repetitions=len(result.samples), prefill_tps=summary["prefill_tps"]["median"],
            decode_tps=summary["decode_tps"]["median"], ttft_s=summary["ttft_s"]["median"],
            server_prefill_tps=summary["server_prefill_tps"]["median"],
            server_decode_tps=summary["server_decode_tps"]["median"],
            noisy=noisy if noisy is not None else result.noise(),
            detail=detail if detail is not None else result.to_json(),
        )  # fmt: skip

    def history(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        query = f"SELECT {', '.join(COLUMNS)} FROM runs"
        args: list[Any] = []
        if model:
            query += " WHERE model = ?"
            args.append(model)
        query += " ORDER BY time DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._connect() as db:
            return [dict(row) for row in db.execute(query, args)]

    def get(self, run_id: int) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def compare(self, a: int, b: int) -> dict[str, Any]:
        """Two runs side by side with b − a deltas (absolute and %); each run's detail is
        its measurements as data, not a JSON string inside the JSON."""
        first, second = self.get(a), self.get(b)
        if first is None or second is None:
            raise KeyError(f"no run {a if first is None else b}")
        for run in (first, second):
            run["detail"] = _parsed(run.get("detail"))
        out: dict[str, Any] = {"a": first, "b": second, "delta": {}}
        for key in DELTAS:
            x, y = first.get(key), second.get(key)
            if x is not None and y is not None:
                out["delta"][key] = {"abs": y - x, "pct": (y - x) / x * 100 if x else None}
        return out

    def export(self, fmt: str, model: str | None = None) -> str:
        rows = self.history(model, limit=100000)
        if fmt == "json":
            return json.dumps(rows, indent=2)
        if fmt == "csv":
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
            return buf.getvalue()
        if fmt == "markdown":
            head = ("time", "model", "engine", "kind", "prompt_tokens", "gen_tokens",
                    "repetitions", "prefill_tps", "decode_tps", "ttft_s", "noisy")  # fmt: skip
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for row in rows:
                cells = []
                for key in head:
                    value = row.get(key)
                    if key == "time":
                        value = time.strftime("%Y-%m-%d %H:%M", time.localtime(value))
                    elif isinstance(value, float):
                        value = f"{value:.1f}" if key != "ttft_s" else f"{value:.3f}"
                    cells.append("" if value is None else str(value))
                lines.append("| " + " | ".join(cells) + " |")
            return "\n".join(lines) + "\n"
        raise ValueError(f"unknown format {fmt!r} (json, csv, markdown)")

    # -- champions -------------------------------------------------------------------------

    def champions(self) -> dict[str, dict[str, Any]]:
        """mode → the champion run (with when and why it was crowned)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.mode, c.time AS crowned, c.reason, r.* FROM champions c "
                "JOIN runs r ON r.id = c.run_id ORDER BY c.mode"
            ).fetchall()
        return {row["mode"]: dict(row) for row in rows}

    def promote(self, mode: str, run_id: int, rule: ChampionRule, force: bool = False) -> str:
        """Make run `run_id` the champion of `mode` if it passes the rule; return why.

        Raises ValueError with the reason when it does not (unless `force`), and for a run
        without prefill and decode figures (a sweep or quality run, or an empty one).
        """
        run = self.get(run_id)
        if run is None:
            raise KeyError(f"no run {run_id}")
        if not (run.get("prefill_tps") or run.get("decode_tps")):
            raise ValueError(f"run {run_id} ({run['kind']}) has no prefill or decode figures: "
                             "nothing to rank it by, even with --force")  # fmt: skip
        current = self.champions().get(mode)
        problems = rule.check(run, current)
        if problems and not force:
            raise ValueError(
                f"run {run_id} does not replace the {mode} champion: " + "; ".join(problems)
            )
        reason = "forced: " + "; ".join(problems) if problems else rule.describe()
        with self._connect() as db:
            db.execute(
                "INSERT INTO champions (mode, run_id, time, reason) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(mode) DO UPDATE SET run_id=excluded.run_id, time=excluded.time, "
                "reason=excluded.reason",
                (mode, run_id, time.time(), reason),
            )
        return reason


DELTAS = ("prefill_tps", "decode_tps", "ttft_s", "server_prefill_tps", "server_decode_tps")
"""The figures compare gives a delta for."""


def _parsed(detail: str | None) -> Any:
    try:
        return json.loads(detail) if detail else None
    except ValueError:
        return detail


@dataclass(frozen=True)
class ChampionRule:
    """When a run may replace a mode's champion, e.g. "> 1200 t/s prompt and > 50 t/s gen"."""

    min_prefill_tps: float | None = None
    min_decode_tps: float | None = None
    beat_champion: bool = True
    """Also be faster than the current champion at decode (and prefill, when both know it)."""

    def describe(self) -> str:
        parts = []
        if self.min_prefill_tps is not None:
            parts.append(f"prefill > {self.min_prefill_tps:g} t/s")
        if self.min_decode_tps is not None:
            parts.append(f"decode > {self.min_decode_tps:g} t/s")
        if self.beat_champion:
            parts.append("faster than the champion")
        return " and ".join(parts) or "no rule"

    def check(self, run: dict[str, Any], champion: dict[str, Any] | None) -> list[str]:
        problems = []
        pp, tg = run.get("prefill_tps") or 0.0, run.get("decode_tps") or 0.0
        if self.min_prefill_tps is not None and pp <= self.min_prefill_tps:
            problems.append(f"prefill {pp:.1f} t/s is not > {self.min_prefill_tps:g}")
        if self.min_decode_tps is not None and tg <= self.min_decode_tps:
            problems.append(f"decode {tg:.1f} t/s is not > {self.min_decode_tps:g}")
        if self.beat_champion and champion is not None and champion["id"] != run["id"]:
            if tg <= (champion.get("decode_tps") or 0.0):
                problems.append(
                    f"decode {tg:.1f} t/s is not faster than the champion's "
                    f"{champion.get('decode_tps') or 0:.1f} (run {champion['id']})"
                )
            if pp and champion.get("prefill_tps") and pp <= champion["prefill_tps"]:
                problems.append(
                    f"prefill {pp:.1f} t/s is not faster than the champion's "
                    f"{champion['prefill_tps']:.1f}"
                )
        return problems


def hardware_summary() -> str:
    """What the numbers were measured on, e.g. "NVIDIA GB10 · 119.7 GiB unified · aarch64"."""
    probe = SystemProbe()
    try:
        snap = probe.collect()
    finally:
        probe.close()
    gpus = ", ".join(g.name for g in snap.gpus) or "no GPU"
    memory = fmt_bytes(snap.memory.total_bytes) if snap.memory else "? memory"
    return f"{gpus} · {memory}{' unified' if snap.unified else ''} · {platform.machine()}"
