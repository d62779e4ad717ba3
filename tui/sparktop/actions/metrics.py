"""sparktop's figures for Prometheus, written once for the agent's /metrics and the textfile
(`sparktop export-metrics`): one Snapshot per scrape, the bench champions beside it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.registry import CollectorRegistry

from sparktop import __version__
from sparktop.actions.errors import ActionError
from sparktop.fleet.metrics import Champion, SnapshotCollector, exposition, registry_for
from sparktop.snapshot import Snapshot

if TYPE_CHECKING:
    from sparktop.config import Config


def bench_champions() -> tuple[Champion, ...]:
    """The champion run per mode from the kept bench results (none before the first bench)."""
    from sparktop import paths
    from sparktop.bench.store import ResultStore

    path = paths.data_dir() / "bench.sqlite3"
    if not path.exists():  # a scrape never creates the store
        return ()
    runs = ResultStore(path).champions()
    return tuple(
        Champion(mode, str(run.get("model") or "?"), run.get("prefill_tps"), run.get("decode_tps"))
        for mode, run in sorted(runs.items())
    )


def metrics_registry(
    snapshot: Callable[[], Snapshot], interval: float | None = None
) -> CollectorRegistry:
    """A registry whose every scrape reads `snapshot()` once, and the champions; `interval`:
    the textfile's seconds between writes (exported, so a reader knows when it is late)."""
    collector = SnapshotCollector(snapshot, bench_champions, __version__, interval)
    return registry_for(collector)


def metrics_endpoint(snapshot: Callable[[], Snapshot]) -> Callable[[str], tuple[bytes, str]]:
    """The agent's /metrics: Accept header in, body and content type out."""
    registry = metrics_registry(snapshot)
    return lambda accept: exposition(registry, accept)


TEXTFILE = "sparktop.prom"


def textfile_dir(text: str) -> Path:
    """The --textfile directory, which must exist (node_exporter reads the one it was given:
    a mistyped path made here would be written to and never read); ActionError otherwise."""
    directory = Path(text).expanduser()
    if not directory.exists():
        raise ActionError(
            f"--textfile {text}: no such directory (node_exporter's "
            "--collector.textfile.directory, which must exist)"
        )
    if not directory.is_dir():
        raise ActionError(f"--textfile {text}: not a directory")
    return directory


def _write(registry: CollectorRegistry, target: Path) -> str | None:
    """One textfile write; None when done, else why not (one line)."""
    from sparktop.atomic import write_text_atomic

    try:
        body, _ = exposition(registry)
    except Exception as exc:  # a probe's bug must not end an --every loop
        return f"cannot read this box's figures: {exc!r}"
    try:
        write_text_atomic(target, body.decode(), mode=0o644)
    except OSError as exc:
        return f"cannot write {target}: {exc.strerror or exc}"
    return None


def export_textfile(
    config: Config,
    directory: Path,
    every: float | None,
    stop: threading.Event,
    warn: Callable[[str], None] = lambda line: None,
) -> int:
    """Write DIRECTORY/sparktop.prom (atomically, readable by node_exporter's textfile
    collector) once, or every `every` seconds until `stop` is set; the number written.

    Once: a failure is an ActionError. Every N s: a failed write is `warn`ed and tried again
    at the next tick, and when `stop` ends the loop the file goes too, so node_exporter stops
    serving figures nobody updates any more (Prometheus then marks the series stale)."""
    from sparktop.collect import SnapshotProducer

    target = directory / TEXTFILE
    producer = SnapshotProducer(config)  # kept between writes: the rates need the last poll
    registry = metrics_registry(producer.collect, every)
    written = 0
    try:
        while True:
            started = time.monotonic()
            line = _write(registry, target)
            if line is None:
                written += 1
            elif every is None:
                raise ActionError(line)
            else:
                warn(f"{line} (trying again in {every:g} s)")
            if every is None:
                return written
            if stop.wait(max(0.0, every - (time.monotonic() - started))):
                break
        with contextlib.suppress(OSError):  # gone already, or something else took its name
            target.unlink(missing_ok=True)
        return written
    finally:
        producer.close()
