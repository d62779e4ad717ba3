"""The `sparktop` command: the CLI, with the full-screen view handed in.

The launcher is the one module that knows both faces. The CLI parses the command line and runs
the headless verbs; with no verb (or `themes`) it turns to the `View` given here. sparktop.ui is
imported only then, so `sparktop status` never loads Textual.
"""

from __future__ import annotations

import logging
import os
import sys

from sparktop import cli
from sparktop.config import Config


class TextualView:
    """sparktop.ui as the CLI's `View`."""

    def themes(self) -> cli.ThemeNames:
        from sparktop.ui.themes import known_theme_names, load_themes

        themes, warnings = load_themes()
        names = tuple(known_theme_names(themes))
        return cli.ThemeNames(names=names, own=frozenset(themes), warnings=tuple(warnings))

    def run(self, config: Config, interval: float | None, theme: str | None) -> int:
        from sparktop.ui.app import run_app

        return run_app(config, interval=interval, theme=theme)


def run(argv: list[str] | None = None) -> int:
    """The command's work, returning its exit status (what tests and scripts call)."""
    return cli.main(argv, view=TextualView())


def main() -> None:
    """The `sparktop` console script and `python -m sparktop`: run, then leave at once.

    By the time `run` returns every verb has finished its work and written its state
    (atomically); what is left is the interpreter tearing down hundreds of modules and
    joining idle pool threads, 0.05-0.15 s a command (tests/bench/serve_overhead.py), so
    logs and output are flushed and the process ends without it.
    """
    code = run()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sparktop status | head`)
            code = code or 1
    os._exit(code)
