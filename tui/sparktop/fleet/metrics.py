"""sparktop's figures as Prometheus metric families, built from one Snapshot per scrape.

`SnapshotCollector` is a prometheus_client custom collector: each `collect()` reads one
Snapshot (the agent's cached one, or a fresh one for the textfile) and the bench champions,
and yields `sparktop_*` families; prometheus_client writes the exposition (text format or
OpenMetrics). Labels stay bounded: served name, engine, port, catalog name, container for
servers; GPU index and name; repository for downloads; mode and model for champions. No PIDs
or timestamps become labels. The container label is `server_container`: Kubernetes scrapes
(prometheus-operator) put their own `container` (the agent's pod's) on every series, which
would rename ours to `exported_container`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from sparktop import snapshot as snap
from sparktop.snapshot import DownloadInfo, ExternalDownloadInfo, ServerInfo, Snapshot

READY = snap.READY
HEALTH_STATES = (snap.STARTING, snap.LOADING, READY, snap.NOT_RESPONDING, snap.ERROR, snap.CRASHED)
SERVER_LABELS = ("served_name", "engine", "port", "catalog_name", "server_container")
GPU_LABELS = ("gpu", "name", "vendor")
DOWNLOAD_LABELS = ("repo", "source")
MAX_DOWNLOADS = 20
"""Downloads exported: the newest record per repository, at most this many."""


@dataclass(frozen=True)
class Champion:
    """A bench champion: the run crowned for a mode, as plain values (from the bench store)."""

    mode: str
    model: str
    prefill_tps: float | None
    decode_tps: float | None


Family = GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily


UNITS = ("bytes", "seconds", "celsius", "watts", "ratio")


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    """A gauge; its unit (the name's last word when it is one) goes in OpenMetrics' UNIT."""
    unit = name.rsplit("_", 1)[-1]
    return GaugeMetricFamily(name, doc, labels=list(labels), unit=unit if unit in UNITS else "")


def _add(family: Family, labels: Sequence[str], value: float | int | bool | None) -> None:
    """One sample; an unknown value (None) is left out rather than exported as 0."""
    if value is not None:
        family.add_metric(list(labels), float(value))


def host_families(s: Snapshot, version: str) -> Iterator[Family]:
    """Build info, snapshot time, uptime and the memory split."""
    info = InfoMetricFamily(
        "sparktop_build", "sparktop's version and the host name it reports (value 1)"
    )
    info.add_metric([], {"version": version, "hostname": s.hostname})
    yield info
    stamp = _gauge(
        "sparktop_snapshot_timestamp_seconds",
        "Unix time (seconds) the figures of this scrape were read",
    )
    _add(stamp, [], s.time)
    yield stamp
    uptime = _gauge("sparktop_host_uptime_seconds", "Seconds since the host booted")
    _add(uptime, [], s.uptime_s)
    yield uptime
    m = s.memory
    fields = {
        "total": ("Total system memory in bytes (/proc/meminfo MemTotal)", "total_bytes"),
        "available": ("Memory available for new work in bytes (MemAvailable)", "available_bytes"),
        "used": ("Memory used in bytes (total - free - buffers - cache, like free)", "used_bytes"),
        "cached": ("Page cache, buffers and reclaimable slab in bytes", "cached_bytes"),
        "free": ("Memory not used at all in bytes (MemFree)", "free_bytes"),
        "swap_total": ("Swap space in bytes", "swap_total_bytes"),
        "swap_used": ("Swap in use in bytes", "swap_used_bytes"),
    }
    for key, (doc, attr) in fields.items():
        family = _gauge(f"sparktop_memory_{key}_bytes", doc)
        _add(family, [], getattr(m, attr) if m is not None else None)
        yield family
    gpu = _gauge(
        "sparktop_memory_gpu_bytes",
        "System memory held by GPU work in bytes (unified memory only; absent otherwise)",
    )
    _add(gpu, [], s.gpu_held_bytes if s.unified and m is not None else None)
    yield gpu
    unified = _gauge(
        "sparktop_memory_unified", "1 when the GPU shares the system memory (GB10, APUs), else 0"
    )
    _add(unified, [], s.unified)
    yield unified


def gpu_families(s: Snapshot) -> Iterator[Family]:
    """Per GPU: utilisation, temperature, power, memory."""
    specs = (
        ("utilization_ratio", "GPU utilisation, 0..1", lambda g: _ratio(g.utilization_percent)),
        ("temperature_celsius", "GPU temperature in degrees Celsius", lambda g: g.temperature_c),
        ("power_watts", "GPU power draw in watts", lambda g: g.power_w),
        ("power_limit_watts", "GPU power limit in watts", lambda g: g.power_limit_w),
        ("memory_used_bytes", "GPU memory in use in bytes", lambda g: g.memory_used_bytes),
        ("memory_total_bytes", "GPU memory in bytes", lambda g: g.memory_total_bytes),
        ("unified", "1 when this GPU's memory is the system memory, else 0", lambda g: g.unified),
    )
    for suffix, doc, value in specs:
        family = _gauge(f"sparktop_gpu_{suffix}", doc, GPU_LABELS)
        for g in s.gpus:
            _add(family, [str(g.index), g.name, g.vendor], value(g))
        yield family


def _ratio(percent: float | None) -> float | None:
    return percent / 100.0 if percent is not None else None


def server_labels(v: ServerInfo) -> list[str]:
    """served_name, engine, port, catalog_name, server_container (the container's name, else
    its short id)."""
    c = v.container
    container = (c.name or c.id[:12]) if c is not None else ""
    return [v.name, v.engine, str(v.port or ""), v.catalog_name or "", container]


def server_families(s: Snapshot) -> Iterator[Family]:
    """Per inference server: health, token counters and rates, KV, load, memory."""
    servers: dict[tuple[str, ...], ServerInfo] = {}
    for v in s.servers:  # one series per label set: a crashed record beside its restart
        key = tuple(server_labels(v))  # gives way to the live one, whichever comes first
        if key not in servers or _rank(v) > _rank(servers[key]):
            servers[key] = v
    health = _gauge(
        "sparktop_server_health",
        "1 for the server's health state (label health), 0 for the others",
        (*SERVER_LABELS, "health"),
    )
    for labels, v in servers.items():
        for state in HEALTH_STATES:
            health.add_metric([*labels, state], 1.0 if v.health == state else 0.0)
    yield health
    up = _gauge("sparktop_server_up", "1 when the server answers ready, else 0", SERVER_LABELS)
    for labels, v in servers.items():
        up.add_metric(list(labels), 1.0 if v.health == READY else 0.0)
    yield up
    counters = (
        (
            "prompt_tokens",
            "Prompt tokens processed since the server started",
            "prompt_tokens_total",
        ),
        ("generation_tokens", "Tokens generated since the server started", "gen_tokens_total"),
    )
    for name, doc, attr in counters:
        counter = CounterMetricFamily(f"sparktop_server_{name}", doc, labels=SERVER_LABELS)
        for labels, v in servers.items():
            _add(counter, labels, getattr(v, attr, None))
        yield counter
    gauges = (
        ("prompt_tokens_per_second", "Prompt processing rate over the last poll, tokens/s",
         lambda v: v.prompt_tps),
        ("generation_tokens_per_second", "Generation rate over the last poll, tokens/s",
         lambda v: v.gen_tps),
        ("kv_cache_usage_ratio", "Share of the KV cache in use, 0..1", lambda v: v.kv_usage),
        ("requests_running", "Requests being processed", lambda v: v.running),
        ("requests_waiting", "Requests waiting for a slot", lambda v: v.waiting),
        ("resident_memory_bytes", "Resident memory of the server process in bytes",
         lambda v: v.rss_bytes),
        ("gpu_memory_bytes", "GPU memory the server's processes hold in bytes",
         lambda v: v.gpu_bytes),
        ("uptime_seconds", "Seconds since the server process started", lambda v: v.uptime_s),
        ("context_tokens", "Context length the server was started with, tokens",
         lambda v: v.context),
        ("managed", "1 when sparktop started the server, else 0", lambda v: v.managed),
    )  # fmt: skip
    for name, doc, value in gauges:
        family = _gauge(f"sparktop_server_{name}", doc, SERVER_LABELS)
        for labels, v in servers.items():
            _add(family, labels, value(v))
        yield family


def _rank(v: ServerInfo) -> int:
    """Which of two records with the same labels to export: a live process over a record."""
    return (v.pid is not None) + (v.health != snap.CRASHED)


def _newest_downloads(s: Snapshot) -> list[DownloadInfo | ExternalDownloadInfo]:
    """The newest record per repository (records are kept oldest first), bounded."""
    by_repo: dict[tuple[str, str], DownloadInfo | ExternalDownloadInfo] = {}
    for d in s.downloads:
        source = "external" if d.external else "sparktop"
        key = (d.repo or getattr(d, "path", "") or "?", source)
        by_repo.pop(key, None)  # a repository fetched again moves to the end (newest)
        by_repo[key] = d
    return list(by_repo.values())[-MAX_DOWNLOADS:]


def download_families(s: Snapshot) -> Iterator[Family]:
    """Per download (newest record per repository): bytes done and total, state."""
    rows = [
        ([d.repo or getattr(d, "path", "") or "?", "external" if d.external else "sparktop"], d)
        for d in _newest_downloads(s)
    ]
    done = _gauge("sparktop_download_done_bytes", "Bytes of the download on disk", DOWNLOAD_LABELS)
    total = _gauge(
        "sparktop_download_total_bytes", "Bytes the download will have when done", DOWNLOAD_LABELS
    )
    speed = _gauge(
        "sparktop_download_speed_bytes_per_second", "Current download speed", DOWNLOAD_LABELS
    )
    state = _gauge(
        "sparktop_download_state",
        "1 for the download's current state (label state)",
        (*DOWNLOAD_LABELS, "state"),
    )
    for labels, d in rows:
        _add(done, labels, d.done_bytes)
        _add(total, labels, d.total_bytes)
        _add(speed, labels, d.speed_bps)
        state.add_metric([*labels, d.state], 1.0)
    yield from (done, total, speed, state)


def champion_families(champions: Sequence[Champion]) -> Iterator[Family]:
    """The bench champion per mode: its prefill and decode rates."""
    labels = ("mode", "model")
    prefill = _gauge(
        "sparktop_bench_champion_prefill_tokens_per_second",
        "Prefill rate of the mode's champion bench run, tokens/s",
        labels,
    )
    decode = _gauge(
        "sparktop_bench_champion_decode_tokens_per_second",
        "Decode rate of the mode's champion bench run, tokens/s",
        labels,
    )
    for c in champions:
        _add(prefill, [c.mode, c.model], c.prefill_tps)
        _add(decode, [c.mode, c.model], c.decode_tps)
    yield from (prefill, decode)


class SnapshotCollector(Collector):
    """A custom collector: one Snapshot (and the champions) per scrape, all families."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        champions: Callable[[], Sequence[Champion]] = tuple,
        version: str = "",
        interval: float | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.champions = champions
        self.version = version
        self.interval = interval
        """Seconds between a textfile's writes (None for the agent: it is scraped)."""

    def describe(self) -> list[Family]:
        return []  # nothing collected at registration; families come with each scrape

    def collect(self) -> Iterator[Family]:
        s = self.snapshot()
        yield from host_families(s, self.version)
        if self.interval is not None:
            every = _gauge(
                "sparktop_textfile_interval_seconds",
                "Seconds between writes of this textfile (sparktop export-metrics --every)",
            )
            _add(every, [], self.interval)
            yield every
        yield from gpu_families(s)
        yield from server_families(s)
        yield from download_families(s)
        try:
            champions = self.champions()
        except Exception:  # an unreadable bench store leaves only the champions out
            champions = ()
        yield from champion_families(champions)


def registry_for(collector: Collector) -> CollectorRegistry:
    """A registry holding only sparktop's families (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The scrape body and its content type: OpenMetrics when `accept` asks for it, else the
    Prometheus text format."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
