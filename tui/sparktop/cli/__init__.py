"""The headless face: the `sparktop` command line and its verbs, for scripts and debug shells.

Owns the parser, one module per verb group (servers, downloads, bench, fleet) and the plain
status renderer. May import the actions, config, the domain, probes and base modules; never
sparktop.ui: the full-screen view is handed in as a `View` by the launcher (sparktop.main).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sparktop import __version__
from sparktop.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from sparktop.control import Control
    from sparktop.snapshot import Snapshot


@dataclass(frozen=True)
class ThemeNames:
    """The view's colour themes, as `sparktop themes` lists them and `--theme` checks them."""

    names: tuple[str, ...]
    """sparktop's themes (shipped and user) first, then the view toolkit's built-in ones."""
    own: frozenset[str]
    """sparktop's own themes, marked in the list."""
    warnings: tuple[str, ...] = ()
    """One line per theme file that could not be loaded."""


class View(Protocol):
    """The full-screen face as the CLI meets it, so a headless verb never loads Textual."""

    def themes(self) -> ThemeNames: ...

    def run(self, config: Config, interval: float | None, theme: str | None) -> int: ...


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparktop",
        description=(
            "Operator's console for a box that serves local LLMs. "
            "Without a command it opens the full-screen view."
        ),
        epilog="Keys in the full-screen view: press ? for help, q to quit.",
    )
    parser.add_argument("--version", action="version", version=f"sparktop {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config file (default: $XDG_CONFIG_HOME/sparktop/config.yaml)",
    )
    parser.add_argument(
        "--interval",
        type=_interval,
        metavar="SECONDS",
        help="refresh interval of the view (default 1 s, or the config's `interval`)",
    )
    parser.add_argument("--theme", metavar="NAME", help="colour theme for this run")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="write debug detail to sparktop's log (<state dir>/sparktop.log)",
    )
    parser.add_argument(
        "--host-root",
        type=Path,
        metavar="PATH",
        help="read the node through PATH (its /proc, /sys, /dev, NVML library), as from a "
        "Kubernetes debug container: --host-root /host (or SPARKTOP_HOST_ROOT)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    status = sub.add_parser("status", help="print the box's state once (no TTY needed)")
    status.add_argument("--json", action="store_true", help="machine-readable JSON (see README)")
    sub.add_parser("themes", help="list the available colour themes")
    from sparktop.cli.downloads import add_parser as add_download_parser
    from sparktop.cli.servers import add_parsers

    add_parsers(sub)
    add_download_parser(sub)
    from sparktop.cli.bench import add_parsers as add_bench_parsers

    add_bench_parsers(sub)
    from sparktop.cli.fleet import add_parsers as add_fleet_parsers

    add_fleet_parsers(sub)
    return parser


def _error(message: str, code: int = 2) -> int:
    print(f"sparktop: error: {message}", file=sys.stderr)
    return code


def cmd_status(config: Config, as_json: bool) -> int:
    from sparktop.collect import collect_status

    snapshot = collect_status(config, finish=_with_idle_countdowns)
    if as_json:
        json.dump(snapshot.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from sparktop.cli.status_text import print_status

        print_status(snapshot)
    return 0


def _with_idle_countdowns(control: Control, snapshot: Snapshot) -> Snapshot:
    """The seconds until each idle stop (`idle_stop_after` entries only; this one-shot look
    notes the servers' activity and stops nothing)."""
    from sparktop.actions import servers as actions

    if not actions.idle_limits(control):
        return snapshot
    watch = actions.watch_idle(control, snapshot.servers, stop_due=False)
    servers = tuple(
        dataclasses.replace(s, idle_stop_in_s=watch.stop_in_s[s.key])
        if s.key in watch.stop_in_s else s
        for s in snapshot.servers
    )  # fmt: skip
    return dataclasses.replace(snapshot, servers=servers)


def cmd_themes(view: View) -> int:
    themes = view.themes()
    for warning in themes.warnings:
        print(f"sparktop: warning: {warning}", file=sys.stderr)
    for name in themes.names:
        marker = "  (sparktop)" if name in themes.own else ""
        print(f"{name}{marker}")
    return 0


def cmd_view(config: Config, args: argparse.Namespace, view: View) -> int:
    if args.theme is not None and args.theme not in view.themes().names:
        return _error(f"unknown theme {args.theme!r} (see `sparktop themes`)")
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        print(
            "sparktop: no terminal here (stdin or stdout is not a TTY); "
            "printing `sparktop status` instead",
            file=sys.stderr,
        )
        return cmd_status(config, as_json=False)
    return view.run(config, interval=args.interval, theme=args.theme)


def main(argv: list[str] | None = None, view: View | None = None) -> int:
    """Run one command line. Without `view` (the CLI alone) only the headless verbs work."""
    args = build_parser().parse_args(argv)
    if args.host_root is not None:
        if not (args.host_root / "proc").is_dir():
            return _error(f"--host-root {args.host_root}: no {args.host_root}/proc there")
        os.environ["SPARKTOP_HOST_ROOT"] = str(args.host_root)  # every probe and child
    from sparktop import logs

    logs.setup(debug=args.debug)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        logs.LOGGER.error("%s", exc)
        return _error(str(exc))
    logs.LOGGER.debug("sparktop %s: %s", __version__, args.command or "view")
    try:
        if args.command == "status":
            return cmd_status(config, args.json)
        if args.command in (None, "themes"):
            if view is None:
                return _error("this entry point has no full-screen view (headless verbs only)")
            if args.command == "themes":
                return cmd_themes(view)
            return cmd_view(config, args, view)
        if args.command in ("hosts", "agent", "export-metrics"):
            from sparktop.cli import fleet

            verbs = {"hosts": fleet.cmd_hosts, "agent": fleet.cmd_agent,
                     "export-metrics": fleet.cmd_export_metrics}  # fmt: skip
            return verbs[args.command](config, args)
        from sparktop.cli.servers import COMMANDS

        if args.command in ("bench", "results"):
            from sparktop.cli.bench import cmd_bench, cmd_results

            return (cmd_bench if args.command == "bench" else cmd_results)(config, args)
        if args.command == "download":
            from sparktop.cli.downloads import cmd_download

            return cmd_download(config, args)
        return COMMANDS[args.command](config, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `sparktop status | head`: the reader left; exit quietly like other CLI tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
