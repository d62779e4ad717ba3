"""The fleet read back from Prometheus: every instance that exports sparktop's metrics, as
the same status documents an SSH or agent host gives (partial: what the metrics carry).

One instant query per panel (hosts, memory, GPUs, servers, downloads), never one per host.
An instance whose series went stale (its scrape failed, or it stopped reporting) shows the
age of its last sample, from `last_over_time` of its snapshot time; so does one whose
figures are older than STALE_AFTER (a textfile node_exporter still serves after
`sparktop export-metrics` ended).
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from sparktop.fleet.hosts import Host, bearer_headers
from sparktop.fleet.metrics import GPU_LABELS, SERVER_LABELS
from sparktop.servers import http
from sparktop.units import fmt_duration

LOOKBACK = "1d"
"""How far back an instance that stopped reporting is still listed (with its age)."""
STALE_AFTER = 300.0
"""Seconds after which an instance's snapshot time counts as stopped (Prometheus's own
lookback), or twice the textfile's `--every` when that is longer: node_exporter keeps serving
a textfile whose writer has died. The snapshot time is the exporting host's clock, so hosts
keep their clocks within this of Prometheus's."""
QUERIES = {
    "hosts": f"last_over_time(sparktop_snapshot_timestamp_seconds[{LOOKBACK}])",
    "memory": '{__name__=~"sparktop_(build_info|host_uptime_seconds|snapshot_timestamp_seconds'
    '|textfile_interval_seconds|memory_.+)"}',
    "gpus": '{__name__=~"sparktop_gpu_.+"}',
    "servers": '{__name__=~"sparktop_server_.+"}',
    "downloads": '{__name__=~"sparktop_download_.+"}',
}
Sample = tuple[dict[str, str], float]
"""A series' labels (with __name__) and its value."""


class PrometheusError(Exception):
    """Prometheus could not be asked (one line)."""


def _headers(host: Host) -> dict[str, str]:
    try:
        headers = bearer_headers(host.token_env, "the Prometheus token")
    except ValueError as exc:
        raise PrometheusError(str(exc)) from None
    if not host.token_env and host.user_env and host.password_env:
        user, password = os.environ.get(host.user_env), os.environ.get(host.password_env)
        if user is None or password is None:
            missing = host.user_env if user is None else host.password_env
            raise PrometheusError(f"environment variable {missing} is not set")
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return headers


def query(host: Host, promql: str, timeout: float) -> tuple[float, list[Sample]]:
    """One instant query: Prometheus's evaluation time and the samples."""
    assert host.prometheus is not None
    url = f"{host.prometheus}/api/v1/query?query={quote(promql, safe='')}"
    reply = http.get(url, timeout=timeout, headers=_headers(host), max_body=64 * 1024 * 1024,
                     trust_env=True, follow_redirects=True)  # fmt: skip
    if reply.status is None:
        if reply.error == "timed out":
            raise PrometheusError(f"timed out after {timeout:g} s")
        raise PrometheusError(f"cannot reach {host.prometheus}: {reply.cause or reply.error}")
    if reply.status in (401, 403):
        raise PrometheusError(f"HTTP {reply.status} from Prometheus: credentials refused")
    try:
        doc = json.loads(reply.body)
    except ValueError:
        raise PrometheusError(f"HTTP {reply.status}: not a Prometheus API answer") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        error = doc.get("error") if isinstance(doc, dict) else None
        raise PrometheusError(f"HTTP {reply.status} from Prometheus: {error or 'bad answer'}")
    data = doc.get("data") or {}
    now, samples = time.time(), []
    for item in data.get("result") or []:
        stamp, value = item.get("value") or (now, "NaN")
        now = float(stamp)
        if math.isfinite(float(value)):  # NaN / ±Inf: no figure (as an absent series)
            samples.append((dict(item.get("metric") or {}), float(value)))
    return now, samples


def _instance(labels: dict[str, str]) -> str:
    return labels.get("instance") or labels.get("job") or "?"


def _by_instance(samples: list[Sample]) -> dict[str, dict[str, list[Sample]]]:
    """instance → metric name → its samples."""
    out: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for labels, value in samples:
        out[_instance(labels)][labels.get("__name__", "")].append((labels, value))
    return out


def _one(metrics: dict[str, list[Sample]], name: str) -> float | None:
    samples = metrics.get(name)
    return samples[0][1] if samples else None


def _int(value: float | None) -> int | None:
    return round(value) if value is not None else None


def _memory(metrics: dict[str, list[Sample]]) -> dict[str, Any] | None:
    keys = ("total", "available", "free", "used", "cached", "swap_total", "swap_used")
    memory = {f"{k}_bytes": _int(_one(metrics, f"sparktop_memory_{k}_bytes")) for k in keys}
    if memory["total_bytes"] is None:
        return None
    memory["unified"] = bool(_one(metrics, "sparktop_memory_unified"))
    memory["gpu_bytes"] = _int(_one(metrics, "sparktop_memory_gpu_bytes"))
    return memory


def _grouped(
    metrics: dict[str, list[Sample]], prefix: str, keys: tuple[str, ...]
) -> dict[tuple[str, ...], dict[str, Sample]]:
    """Series of the families under `prefix`, grouped by the labels `keys` (one row each),
    each family under its name without the prefix."""
    rows: dict[tuple[str, ...], dict[str, Sample]] = defaultdict(dict)
    for name, samples in metrics.items():
        if not name.startswith(prefix):
            continue  # another panel's family (an instance's metrics come all together)
        for labels, value in samples:
            row = tuple(labels.get(k, "") for k in keys)
            field = name.removeprefix(prefix)
            entry = rows[row]
            if field in ("health", "state") and value != 1:
                continue  # enum-like: the state set to 1 names it
            entry[field] = (labels, value)
    return rows


def _value(row: dict[str, Sample], field: str) -> float | None:
    return row[field][1] if field in row else None


GPU_FIELDS = {
    "temperature_c": ("temperature_celsius", float), "power_w": ("power_watts", float),
    "power_limit_w": ("power_limit_watts", float),
    "memory_used_bytes": ("memory_used_bytes", round),
    "memory_total_bytes": ("memory_total_bytes", round), "unified": ("unified", bool),
}  # fmt: skip
SERVER_FIELDS = {
    "prompt_tps": ("prompt_tokens_per_second", float),
    "gen_tps": ("generation_tokens_per_second", float),
    "prompt_tokens_total": ("prompt_tokens_total", float),
    "gen_tokens_total": ("generation_tokens_total", float),
    "kv_usage": ("kv_cache_usage_ratio", float), "running": ("requests_running", round),
    "waiting": ("requests_waiting", round), "rss_bytes": ("resident_memory_bytes", round),
    "gpu_bytes": ("gpu_memory_bytes", round), "uptime_s": ("uptime_seconds", float),
    "context": ("context_tokens", round), "managed": ("managed", bool),
}  # fmt: skip
"""status --json key → (family name after the prefix, how its value reads)."""


def _fields(row: dict[str, Sample], spec: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The keys of `spec` from a row's series; None where the series is absent."""
    out = {}
    for key, (family, convert) in spec.items():
        value = _value(row, family)
        out[key] = convert(value) if value is not None else None
    return out


def _gpus(metrics: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    gpus = []
    grouped = _grouped(metrics, "sparktop_gpu_", GPU_LABELS)
    for (index, name, vendor), row in sorted(grouped.items()):
        util = _value(row, "utilization_ratio")
        gpus.append({
            "index": int(index) if index.isdigit() else 0, "name": name, "vendor": vendor,
            "utilization_percent": util * 100 if util is not None else None,
            "memory_source": "prometheus", "processes": [], **_fields(row, GPU_FIELDS),
        })  # fmt: skip
    return gpus


def _servers(metrics: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    servers = []
    grouped = _grouped(metrics, "sparktop_server_", SERVER_LABELS)
    for (name, engine, port, catalog, container), row in sorted(grouped.items()):
        health = row["health"][0].get("health") if "health" in row else None
        servers.append({
            "name": name, "engine": engine, "pid": None,
            "port": int(port) if port.isdigit() else None, "catalog_name": catalog or None,
            "container": {"runtime": "?", "id": container, "name": container}
            if container else None,
            "health": health or "?", **_fields(row, SERVER_FIELDS),
        })  # fmt: skip
    return servers


def _downloads(metrics: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    downloads = []
    for (repo, source), row in sorted(
        _grouped(metrics, "sparktop_download_", ("repo", "source")).items()
    ):
        done, total = _int(_value(row, "done_bytes")) or 0, _int(_value(row, "total_bytes"))
        item: dict[str, Any] = {
            "repo": repo,
            "state": row["state"][0].get("state") if "state" in row else "?",
            "done_bytes": done,
            "total_bytes": total or 0,
            "percent": 100.0 * done / total if total else None,
            "speed_bps": _value(row, "speed_bytes_per_second") or 0.0,
        }
        if source == "external":
            item.update(path=repo, mode="?")
        else:
            item["id"] = repo
        downloads.append(item)
    return downloads


def status_document(metrics: dict[str, list[Sample]]) -> dict[str, Any]:
    """A `status --json`-shaped document of one instance from its live series."""
    build = metrics.get("sparktop_build_info") or [({}, 1.0)]
    return {
        "schema": 1,
        "time": _one(metrics, "sparktop_snapshot_timestamp_seconds") or 0.0,
        "hostname": build[0][0].get("hostname") or "?",
        "version": build[0][0].get("version"),
        "uptime_s": _one(metrics, "sparktop_host_uptime_seconds"),
        "memory": _memory(metrics),
        "gpus": _gpus(metrics),
        "hints": [],
        "servers": _servers(metrics),
        "downloads": _downloads(metrics),
    }


def fetch_instances(host: Host, timeout: float) -> list[tuple[str, dict[str, Any] | None, str]]:
    """(instance, its status document or None when stale, why stale) for every instance that
    exported sparktop's metrics within LOOKBACK; raises PrometheusError."""
    with ThreadPoolExecutor(max_workers=len(QUERIES)) as pool:  # all within one timeout
        asked = {panel: pool.submit(query, host, q, timeout) for panel, q in QUERIES.items()}
        answers = {panel: future.result() for panel, future in asked.items()}
    now, last = answers["hosts"]
    live: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for panel in ("memory", "gpus", "servers", "downloads"):
        for instance, metrics in _by_instance(answers[panel][1]).items():
            for name, samples in metrics.items():
                live[instance][name] += samples
    out = []
    seen = {_instance(labels): value for labels, value in last}
    for instance in sorted(set(seen) | set(live)):
        doc = None
        if instance in live and "sparktop_build_info" in live[instance]:
            doc = status_document(live[instance])
        written = doc["time"] if doc is not None and doc["time"] else seen.get(instance, now)
        age = max(0.0, now - written)
        every = _one(live[instance], "sparktop_textfile_interval_seconds") or 0.0
        if doc is not None and age <= max(STALE_AFTER, 2 * every):
            out.append((instance, doc, ""))
        else:
            out.append((instance, None, f"stale: last sample {fmt_duration(age)} ago"))
    return out
