"""sparktop's figures for Prometheus, written once for the agent's /metrics and the textfile
(`sparktop export-metrics`): one Snapshot per scrape, the bench champions beside it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.registry import CollectorRegistry

from sparktop import __version__
from sparktop.fleet.metrics import Champion, SnapshotCollector, exposition, registry_for
from sparktop.snapshot import Snapshot


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


def metrics_registry(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry whose every scrape reads `snapshot()` once, and the champions."""
    return registry_for(SnapshotCollector(snapshot, bench_champions, __version__))


def metrics_endpoint(snapshot: Callable[[], Snapshot]) -> Callable[[str], tuple[bytes, str]]:
    """The agent's /metrics: Accept header in, body and content type out."""
    registry = metrics_registry(snapshot)
    return lambda accept: exposition(registry, accept)
