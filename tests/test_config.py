"""Config and YAML errors point at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparktop.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_when_no_file(isolated_dirs):
    config = load_config()
    assert config.interval == 1.0 and config.theme is None


def test_values_are_read(tmp_path):
    config = load_config(
        write(
            tmp_path,
            "interval: 2.5\ntheme: sparktop-light\nmemory:\n  cache_hint_min_percent: 20\n",
        )
    )
    assert config.interval == 2.5
    assert config.theme == "sparktop-light"
    assert config.memory_hints.cache_min_percent == 20


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("interval: 0\n", 1, "interval must be between"),
        ("theme: sparktop-dark\nmemory:\n  bogus: 3\n", 3, "unknown setting memory.bogus"),
        ("memory:\n  low_free_percent: 150\n", 2, "must be between 0 and 100"),
        ("- a\n- b\n", 1, "expected a mapping"),
        ("interval: 1\n  bad indent: 2\n", 2, "invalid YAML"),
        ("\ttab: 1\n", 1, "invalid YAML"),
    ],
)
def test_problems_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == line
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}:" if line else f"{path}:")
    assert "\n" not in str(info.value)


def test_binary_file_is_a_clear_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
