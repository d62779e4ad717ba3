"""User configuration: ``$XDG_CONFIG_HOME/sparktop/config.yaml`` or ``--config PATH``.

Every problem is reported as one line naming file:line, and loading stops there: a
half-understood config is worse than none.

Each section becomes the plain values of the layer that uses it (`MemoryHints` for the system
probe, `ChampionRule` for bench, `Host` for fleet), so config stands above the domain: the
actions and the faces read it and hand those values down; nothing below imports config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparktop import paths
from sparktop.probes.system import MemoryHints
from sparktop.yamlio import Lines, YamlError, load_yaml

if TYPE_CHECKING:  # imported where used: the view's first frame waits for every import here
    from sparktop.bench.store import ChampionRule
    from sparktop.fleet.hosts import Host

ConfigError = YamlError


DEFAULT_MODES = ("ask", "code", "architect", "debug")


@dataclass(frozen=True)
class ServerSettings:
    """How often and how patiently sparktop polls inference servers."""

    interval: float = 2.0
    """Seconds between discovery + poll cycles (process scan, /health, /metrics)."""
    idle_interval: float = 10.0
    """Seconds between cycles while every server is ready and idle (nothing running, no
    tokens flowing) and no download elsewhere is growing; any activity, a key or a serve or
    stop brings back `interval` at once, and a server's exit shows at once (pidfd); what
    starts elsewhere (a server, a request, a download, a catalog edit) is seen within this.
    10 s keeps a pane left open for days under btop's cost (docs/benchmarks.md,
    2026-11-30). With no server at all, the box counts as idle too."""
    timeout: float = 1.0
    """Seconds one poll request may take before the server counts as not responding."""
    stop_timeout: float = 15.0
    """Seconds between SIGTERM and SIGKILL when stopping a server."""


@dataclass(frozen=True)
class DownloadSettings:
    """How sparktop downloads from Hugging Face."""

    parallel: int = 8
    """Files of one download fetched at once (as `hf download`); `--parallel` overrides."""


@dataclass(frozen=True)
class Config:
    interval: float = 1.0
    theme: str | None = None
    memory_hints: MemoryHints = field(default_factory=MemoryHints)
    servers: ServerSettings = ServerSettings()
    downloads: DownloadSettings = DownloadSettings()
    engines: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Engine name → argv prefix that starts it (e.g. llama.cpp: /opt/llama/llama-server)."""
    bench_modes: tuple[str, ...] = DEFAULT_MODES
    bench_rules: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()
    """mode → champion rule fields (the fields of ChampionRule)."""
    hosts: tuple[Host, ...] = ()
    """Other boxes, in config order."""
    source: Path | None = None

    @property
    def engine_binaries(self) -> dict[str, tuple[str, ...]]:
        return dict(self.engines)

    def champion_rule(self, mode: str) -> ChampionRule:
        from sparktop.bench.store import ChampionRule

        return ChampionRule(**dict(dict(self.bench_rules).get(mode, ())))


_TOP_KEYS = {"interval", "theme", "memory", "servers", "downloads", "engines", "bench", "hosts"}
_RULE_KEYS = {"min_prefill_tps", "min_decode_tps", "beat_champion"}
_SERVER_KEYS = {
    "interval": (0.01, 3600),
    "idle_interval": (0.01, 3600),
    "timeout": (0.05, 120),
    "stop_timeout": (0.5, 3600),
}
_DOWNLOAD_KEYS = {"parallel": (1, 64)}
_HINT_KEYS = {
    "cache_hint_min_percent": "cache_min_percent",
    "low_available_percent": "low_available_percent",
    "low_free_percent": "low_free_percent",
}


def _number(value: Any, lines: Lines, *keys: str, low: float, high: float) -> float:
    name = ".".join(keys)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise lines.error(f"{name} must be a number, got {value!r}", *keys)
    if not low <= float(value) <= high:
        raise lines.error(f"{name} must be between {low:g} and {high:g}, got {value!r}", *keys)
    return float(value)


def parse_config(data: Any, lines: Lines) -> Config:
    """Turn parsed YAML into a Config, or raise ConfigError at the first problem."""
    if data is None:
        return Config(source=lines.path)
    if not isinstance(data, dict):
        raise lines.error(f"expected a mapping of settings, got {type(data).__name__}")
    for key in data:
        if key not in _TOP_KEYS:
            known = ", ".join(sorted(_TOP_KEYS))
            raise lines.error(f"unknown setting {key!r} (known: {known})", key)
    interval = 1.0
    if "interval" in data:
        interval = _number(data["interval"], lines, "interval", low=0.05, high=3600)
    theme = data.get("theme")
    if theme is not None and (not isinstance(theme, str) or not theme.strip()):
        raise lines.error(f"theme must be a theme name, got {theme!r}", "theme")
    hints = MemoryHints()
    memory = data.get("memory")
    if memory is not None:
        if not isinstance(memory, dict):
            raise lines.error("memory must be a mapping", "memory")
        values: dict[str, float] = {}
        for key, value in memory.items():
            if key not in _HINT_KEYS:
                known = ", ".join(sorted(_HINT_KEYS))
                raise lines.error(f"unknown setting memory.{key} (known: {known})", "memory", key)
            values[_HINT_KEYS[key]] = _number(value, lines, "memory", key, low=0, high=100)
        hints = MemoryHints(**values)
    servers = ServerSettings()
    raw_servers = data.get("servers")
    if raw_servers is not None:
        if not isinstance(raw_servers, dict):
            raise lines.error("servers must be a mapping", "servers")
        values = {}
        for key, value in raw_servers.items():
            if key not in _SERVER_KEYS:
                known = ", ".join(sorted(_SERVER_KEYS))
                raise lines.error(f"unknown setting servers.{key} (known: {known})", "servers", key)
            low, high = _SERVER_KEYS[key]
            values[key] = _number(value, lines, "servers", key, low=low, high=high)
        servers = ServerSettings(**values)
    downloads = _downloads(data.get("downloads"), lines)
    engines: list[tuple[str, tuple[str, ...]]] = []
    raw_engines = data.get("engines")
    if raw_engines is not None:
        if not isinstance(raw_engines, dict):
            raise lines.error("engines must be a mapping of engine: command", "engines")
        for key, value in raw_engines.items():
            from sparktop.engines import CONFIGURABLE_ENGINES

            if key not in CONFIGURABLE_ENGINES:
                known = ", ".join(CONFIGURABLE_ENGINES)
                raise lines.error(f"unknown engine {key!r} (known: {known})", "engines", key)
            if isinstance(value, str) and value.strip():
                argv: tuple[str, ...] = (value,)
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                argv = tuple(value)
            else:
                raise lines.error(
                    f"engines.{key} must be a path or a list of arguments", "engines", key
                )
            engines.append((key, argv))
    modes, rules = _bench(data.get("bench"), lines)
    from sparktop.fleet.hosts import parse_hosts

    hosts = parse_hosts(data.get("hosts"), lines)
    return Config(
        interval=interval,
        theme=theme,
        memory_hints=hints,
        servers=servers,
        downloads=downloads,
        engines=tuple(engines),
        bench_modes=modes,
        bench_rules=rules,
        hosts=hosts,
        source=lines.path,
    )


def _downloads(raw: Any, lines: Lines) -> DownloadSettings:
    """downloads: {parallel: N} (whole numbers within their bounds)."""
    if raw is None:
        return DownloadSettings()
    if not isinstance(raw, dict):
        raise lines.error("downloads must be a mapping", "downloads")
    unknown = next((key for key in raw if key not in _DOWNLOAD_KEYS), None)
    if unknown is not None:
        known = ", ".join(sorted(_DOWNLOAD_KEYS))
        raise lines.error(f"unknown setting downloads.{unknown} (known: {known})",
                          "downloads", unknown)  # fmt: skip
    values: dict[str, int] = {}
    for key, (low, high) in _DOWNLOAD_KEYS.items():
        if key in raw:
            number = _number(raw[key], lines, "downloads", key, low=low, high=high)
            if number != int(number):
                raise lines.error(f"downloads.{key} must be a whole number, got {raw[key]!r}",
                                  "downloads", key)  # fmt: skip
            values[key] = int(number)
    return DownloadSettings(**values)


def _bench(raw: Any, lines: Lines) -> tuple[tuple[str, ...], tuple]:
    """bench: {modes: [...], rules: {MODE: {min_prefill_tps, min_decode_tps, beat_champion}}}"""
    if raw is None:
        return DEFAULT_MODES, ()
    if not isinstance(raw, dict):
        raise lines.error("bench must be a mapping", "bench")
    for key in raw:
        if key not in ("modes", "rules"):
            raise lines.error(f"unknown setting bench.{key} (known: modes, rules)", "bench", key)
    modes = raw.get("modes", list(DEFAULT_MODES))
    if not isinstance(modes, list) or not all(isinstance(m, str) and m for m in modes):
        raise lines.error("bench.modes must be a list of names", "bench", "modes")
    rules = []
    for mode, rule in (raw.get("rules") or {}).items():
        if mode not in modes:
            raise lines.error(f"bench.rules.{mode}: not one of bench.modes", "bench", "rules", mode)
        if not isinstance(rule, dict):
            raise lines.error(f"bench.rules.{mode} must be a mapping", "bench", "rules", mode)
        fields = []
        for key, value in rule.items():
            if key not in _RULE_KEYS:
                known = ", ".join(sorted(_RULE_KEYS))
                raise lines.error(
                    f"unknown setting bench.rules.{mode}.{key} (known: {known})",
                    "bench", "rules", mode, key,
                )  # fmt: skip
            if key == "beat_champion":
                if not isinstance(value, bool):
                    raise lines.error(
                        f"bench.rules.{mode}.beat_champion must be true or false",
                        "bench", "rules", mode, key,
                    )  # fmt: skip
                fields.append((key, value))
            else:
                fields.append((key, _number(value, lines, "bench", "rules", mode, key,
                                            low=0, high=1e7)))  # fmt: skip
        rules.append((mode, tuple(fields)))
    return tuple(modes), tuple(rules)


def load_config(path: Path | None = None) -> Config:
    """Load the config file: a missing default file means defaults; a missing --config errs."""
    explicit = path is not None
    path = path or paths.default_config_file()
    if not path.exists():
        if explicit:
            raise ConfigError(path, None, "config file not found")
        return Config()
    data, lines = load_yaml(path)
    return parse_config(data, lines)
