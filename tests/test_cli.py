"""The headless CLI as a script or a Talos debug shell meets it."""

from __future__ import annotations

import json
import re

from conftest import machine_env, run_cli

from sparktop import __version__

ANSI = re.compile(r"\x1b\[")


def test_version_and_help():
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"sparktop {__version__}"
    help_ = run_cli("--help")
    assert help_.returncode == 0
    for word in ("status", "--interval", "--config", "--theme"):
        assert word in help_.stdout


def test_status_text_when_piped_has_no_colour_codes():
    result = run_cli("status", env=machine_env("spark"))
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout)
    out = result.stdout
    assert "spark-01" in out and "unified with the GPU" in out
    assert "NVIDIA GB10" in out and "llama-server" in out
    assert "drop_caches" in out


def test_status_honours_no_color_even_when_colour_is_forced():
    env = machine_env("strix") | {"FORCE_COLOR": "1", "NO_COLOR": "1"}
    result = run_cli("status", env=env)
    assert result.returncode == 0
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", result.stdout)  # no foreground colours
    assert "AMD Radeon 8060S (Strix Halo)" in result.stdout


def test_status_without_gpu_says_why():
    result = run_cli("status", env=machine_env("nogpu"))
    assert result.returncode == 0
    assert "GPU: none visible — NVML library not found" in result.stdout


def test_bare_sparktop_without_a_tty_prints_status_instead_of_failing():
    result = run_cli(env=machine_env("nogpu"))
    assert result.returncode == 0
    assert "no terminal here" in result.stderr
    assert "box" in result.stdout and "Memory" in result.stdout


def test_bad_yaml_config_names_file_and_line_and_exits_non_zero(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("interval: 1\ntheme: [unclosed\n")
    result = run_cli("--config", str(config), "status")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"sparktop: error: {config}:")
    assert "invalid YAML" in lines[0]


def test_wrong_setting_names_the_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("# my config\ninterval: fast\n")
    result = run_cli("--config", str(config), "status", "--json")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sparktop: error: {config}:2: interval must be a number, got 'fast'"
    )
    assert result.stdout == ""


def test_default_config_location_is_xdg(isolated_dirs):
    isolated_dirs["config"].mkdir(parents=True)
    (isolated_dirs["config"] / "config.yaml").write_text("colour: blue\n")
    result = run_cli("status")
    assert result.returncode == 2
    assert "config.yaml:1: unknown setting 'colour'" in result.stderr


def test_missing_explicit_config_is_an_error(tmp_path):
    result = run_cli("--config", str(tmp_path / "nope.yaml"), "status")
    assert result.returncode == 2
    assert "nope.yaml: config file not found" in result.stderr


def test_bad_interval_flag_is_refused():
    result = run_cli("--interval", "0", "status")
    assert result.returncode == 2
    assert "--interval" in result.stderr


def test_status_json_is_valid_json_when_piped_through_head():
    result = run_cli("status", "--json", env=machine_env("spark"))
    assert json.loads(result.stdout)["hostname"] == "spark-01"


def test_unknown_theme_is_refused_with_a_pointer_to_the_list():
    result = run_cli("--theme", "nope", env=machine_env("nogpu"))
    assert result.returncode == 2
    assert result.stderr.strip() == "sparktop: error: unknown theme 'nope' (see `sparktop themes`)"


def test_themes_lists_the_shipped_ones_first():
    result = run_cli("themes")
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names[:4] == [
        "sparktop-console",
        "sparktop-dark",
        "sparktop-high-contrast",
        "sparktop-light",
    ]
    assert "textual-dark" in names
