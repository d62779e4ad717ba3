"""Themes from YAML: the shipped `themes/*.yaml` plus the user's config-dir themes.

A broken theme file never stops the app: it is skipped with a warning naming file:line
and field, and the app falls back to the default theme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from sparktop import paths
from sparktop.yamlio import Lines, YamlError, load_yaml

DEFAULT_THEME = "sparktop-dark"
CONSOLE_THEME = "sparktop-console"
BUILTIN_DIR = paths.shipped_dir("themes", "themes")
COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
CHARSETS = ("unicode", "cp437")
"""`charset:` of a theme: cp437 draws only with the Linux console font's glyphs (charset.py)."""
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
# Variables the panels use; themes that omit them get these (work on any palette).
DEFAULT_VARIABLES = {
    "mem-gpu": "ansi_magenta",
    "mem-other": "ansi_yellow",
    "mem-cache": "ansi_blue",
    "mem-free": "ansi_bright_black",
}


@dataclass
class SparktopTheme(Theme):
    """A Textual theme that also says which characters the screen may draw with."""

    charset: str = "unicode"


def _color(value: Any, lines: Lines, *keys: str) -> str:
    field = ".".join(keys)
    if not isinstance(value, str):
        raise lines.error(f"{field}: expected a colour string, got {value!r}", *keys)
    try:
        Color.parse(value)
    except ColorParseError:
        raise lines.error(f"{field}: {value!r} is not a colour", *keys) from None
    return value


def theme_from_yaml(data: Any, lines: Lines) -> SparktopTheme:
    """Validate one theme document and build the Textual Theme; raise YamlError on a problem."""
    if not isinstance(data, dict):
        raise lines.error("a theme file must be a mapping with name and colors")
    known = {"name", "dark", "ansi", "charset", "colors", "variables", "luminosity_spread",
             "text_alpha"}  # fmt: skip
    for key in data:
        if key not in known:
            raise lines.error(f"unknown field {key!r} (known: {', '.join(sorted(known))})", key)
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise lines.error(f"name: expected a theme name like 'my-theme', got {name!r}", "name")
    colors = data.get("colors")
    if not isinstance(colors, dict):
        raise lines.error("colors: expected a mapping of colour names", "colors")
    for key in colors:
        if key not in COLOR_FIELDS:
            allowed = ", ".join(COLOR_FIELDS)
            raise lines.error(f"colors.{key}: unknown colour (known: {allowed})", "colors", key)
    if "primary" not in colors:
        raise lines.error("colors.primary: required", "colors")
    parsed = {key: _color(value, lines, "colors", key) for key, value in colors.items()}
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise lines.error("variables: expected a mapping", "variables")
    merged = dict(DEFAULT_VARIABLES)
    for key, value in variables.items():
        merged[str(key)] = _color(value, lines, "variables", str(key))
    for flag in ("dark", "ansi"):
        if flag in data and not isinstance(data[flag], bool):
            raise lines.error(f"{flag}: expected true or false, got {data[flag]!r}", flag)
    charset = data.get("charset", "unicode")
    if charset not in CHARSETS:
        raise lines.error(f"charset: expected one of {', '.join(CHARSETS)}, got {charset!r}",
                          "charset")  # fmt: skip
    extra: dict[str, float] = {}
    for number in ("luminosity_spread", "text_alpha"):
        if number in data:
            value = data[number]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise lines.error(f"{number}: expected a number, got {value!r}", number)
            extra[number] = float(value)
    return SparktopTheme(
        name=name,
        charset=charset,
        dark=data.get("dark", True),
        ansi=data.get("ansi", False),
        variables=merged,
        **parsed,
        **extra,
    )


def load_theme_file(path: Path) -> SparktopTheme:
    data, lines = load_yaml(path)
    return theme_from_yaml(data, lines)


def theme_dirs() -> list[Path]:
    """Shipped themes first, then the user's (which override by name)."""
    return [BUILTIN_DIR, paths.config_dir() / "themes"]


def load_themes(dirs: list[Path] | None = None) -> tuple[dict[str, Theme], list[str]]:
    """All loadable themes by name, and one warning line per file that failed."""
    themes: dict[str, Theme] = {}
    warnings: list[str] = []
    for directory in dirs if dirs is not None else theme_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            try:
                theme = load_theme_file(path)
            except YamlError as exc:
                warnings.append(f"theme skipped: {exc}")
                continue
            themes[theme.name] = theme
    return themes, warnings


def known_theme_names(themes: dict[str, Theme] | None = None) -> list[str]:
    """sparktop's themes (shipped and user) first, then Textual's built-in ones."""
    from textual.theme import BUILTIN_THEMES

    if themes is None:
        themes, _ = load_themes()
    return sorted(themes) + sorted(name for name in BUILTIN_THEMES if name not in themes)
