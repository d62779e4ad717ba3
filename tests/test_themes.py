"""Themes load from YAML; a broken file is named with its line and skipped."""

from __future__ import annotations

from pathlib import Path

from sparktop.ui.themes import BUILTIN_DIR, load_themes


def test_shipped_themes_cover_dark_light_contrast_and_the_linux_console():
    themes, warnings = load_themes([BUILTIN_DIR])
    assert warnings == []
    assert {"sparktop-dark", "sparktop-light", "sparktop-high-contrast", "sparktop-console"} <= set(
        themes
    )
    assert themes["sparktop-light"].dark is False
    console = themes["sparktop-console"]
    assert console.ansi is True
    # 16-colour safe: every colour is one of the terminal's own ANSI colours
    for field in (
        "primary",
        "secondary",
        "accent",
        "foreground",
        "background",
        "success",
        "warning",
        "error",
    ):
        assert getattr(console, field).startswith("ansi_"), field
    assert all(value.startswith("ansi_") for value in console.variables.values())


def test_bad_theme_names_file_line_and_field(tmp_path: Path):
    user = tmp_path / "themes"
    user.mkdir()
    (user / "broken.yaml").write_text(
        "name: broken\ncolors:\n  primary: '#123456'\n  accent: not-a-colour\n"
    )
    themes, warnings = load_themes([BUILTIN_DIR, user])
    assert "broken" not in themes and "sparktop-dark" in themes
    assert warnings == [
        f"theme skipped: {user / 'broken.yaml'}:4: colors.accent: 'not-a-colour' is not a colour"
    ]


def test_theme_file_with_yaml_syntax_error(tmp_path: Path):
    (tmp_path / "x.yaml").write_text("name: x\ncolors: {primary: '#fff'\n")
    themes, warnings = load_themes([tmp_path])
    assert themes == {}
    assert warnings[0].startswith(f"theme skipped: {tmp_path / 'x.yaml'}:")
    assert "invalid YAML" in warnings[0]


def test_missing_primary_and_unknown_fields_are_named(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("name: a\ncolors:\n  accent: '#fff'\n")
    (tmp_path / "b.yaml").write_text("name: b\ncolours:\n  primary: '#fff'\n")
    _, warnings = load_themes([tmp_path])
    assert "a.yaml:2: colors.primary: required" in warnings[0]
    assert "b.yaml:2: unknown field 'colours'" in warnings[1]


def test_user_theme_overrides_a_shipped_one_by_name(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text("name: sparktop-dark\ncolors:\n  primary: '#FF0000'\n")
    themes, warnings = load_themes([BUILTIN_DIR, tmp_path])
    assert warnings == []
    assert themes["sparktop-dark"].primary == "#FF0000"
