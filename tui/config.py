"""User configuration: ``$XDG_CONFIG_HOME/sparktop/config.yaml`` or ``--config PATH``.

Every problem is reported as one line naming file:line, and loading stops there: a
half-understood config is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.yamlio import Lines, YamlError, load_yaml

ConfigError = YamlError


@dataclass(frozen=True)
class MemoryHints:
    """When to suggest dropping the page cache (sparktop never does it itself)."""

    cache_min_percent: float = 10.0
    """Page cache must be at least this share of total memory."""
    low_available_percent: float = 25.0
    """... while available memory is below this share of total ..."""
    low_free_percent: float = 15.0
    """... or truly free (unreclaimed) memory is below this share of total."""


@dataclass(frozen=True)
class Config:
    interval: float = 1.0
    theme: str | None = None
    memory_hints: MemoryHints = MemoryHints()
    source: Path | None = None


_TOP_KEYS = {"interval", "theme", "memory"}
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
    return Config(interval=interval, theme=theme, memory_hints=hints, source=lines.path)


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
