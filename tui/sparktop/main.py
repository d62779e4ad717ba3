"""The `sparktop` command: the CLI, with the full-screen view handed in.

The launcher is the one module that knows both faces. The CLI parses the command line and runs
the headless verbs; with no verb (or `themes`) it turns to the `View` given here. sparktop.ui is
imported only then, so `sparktop status` never loads Textual.
"""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, view=TextualView())
