"""`sparktop bench` (API and llama-bench figures, kept in SQLite) and `sparktop results`."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparktop.actions.bench import BenchOptions
    from sparktop.config import Config


def add_parsers(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmark a served model (prefill/decode tok/s, TTFT)")
    bench.add_argument("target", metavar="NAME|PORT|PID|URL", nargs="?")
    bench.add_argument("--prompt", type=int, default=512, help="prompt tokens (default 512)")
    bench.add_argument("--gen", type=int, default=128, help="generated tokens (default 128)")
    bench.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    bench.add_argument(
        "--llama-bench",
        action="store_true",
        help="also run llama-bench on the model file (local llama.cpp only)",
    )
    bench.add_argument(
        "--depths",
        action="store_true",
        help="also sweep context depth 0, 4K, 16K, 32K … up to the served context",
    )
    bench.add_argument(
        "--concurrency",
        action="store_true",
        help="also run 1, 2, 4, 8 streams at once (aggregate tok/s)",
    )
    bench.add_argument(
        "--quality",
        action="store_true",
        help="also ask a few prompts per mode and judge the answers' coherence",
    )
    bench.add_argument(
        "--queue",
        nargs="+",
        metavar="NAME",
        help="benchmark these catalog models in turn, serving each (exclusive "
        "switch, no questions asked): for unattended overnight runs",
    )
    bench.add_argument("--json", action="store_true", help="machine-readable JSON")
    bench.add_argument("--no-save", action="store_true", help="do not keep the result")
    results = sub.add_parser("results", help="kept benchmark results: history, compare, export")
    results.add_argument("--model", help="only this model")
    results.add_argument(
        "--compare",
        nargs=2,
        type=int,
        metavar=("A", "B"),
        help="two runs side by side, with the deltas of B against A",
    )
    results.add_argument("--export", choices=["markdown", "csv", "json"])
    results.add_argument("--json", action="store_true", help="the list or comparison as JSON")
    results.add_argument("--champions", action="store_true", help="the champion run per mode")
    results.add_argument(
        "--promote",
        type=int,
        metavar="RUN",
        help="make RUN the champion of --mode (if it passes the mode's rule)",
    )
    results.add_argument("--mode", help="mode for --promote (see config bench.modes)")
    results.add_argument("--force", action="store_true", help="promote even if the rule fails")


def _err(message: str, code: int = 1) -> int:
    print(f"sparktop: error: {message}", file=sys.stderr)
    return code


def _options(config: Config, args: argparse.Namespace) -> BenchOptions:
    """The options the flags ask for; ActionError (exit 2) for lengths below 1, before any
    server is looked at."""
    from sparktop.actions.bench import BenchOptions

    options = BenchOptions(
        prompt=args.prompt, gen=args.gen, reps=args.reps, llama_bench=args.llama_bench,
        depths=args.depths, concurrency=args.concurrency, quality=args.quality,
        modes=tuple(config.bench_modes), save=not args.no_save,
    )  # fmt: skip
    options.check()
    return options


def _printer(args: argparse.Namespace):
    from sparktop.textfit import terminal_width, wrap

    width = terminal_width()

    def show(event) -> None:
        if not args.json:
            print("\n".join(wrap(event.message, width, "      ", "  ")), flush=True)

    return show


def cmd_bench(config: Config, args: argparse.Namespace) -> int:
    if args.queue:
        return cmd_bench_queue(config, args)
    if not args.target:
        return _err("give a served model NAME or URL (or --queue NAME ...)")
    from sparktop.actions import ActionError
    from sparktop.actions import bench as actions
    from sparktop.control import Control

    cancel = threading.Event()
    try:
        options = _options(config, args)
    except ActionError as exc:
        return _err(str(exc), exc.code)
    with Control.from_config(config) as control:
        try:
            target = actions.target_of(control, args.target)
            outcome = actions.bench(control, target, options, report=_printer(args),
                                    cancel=cancel)  # fmt: skip
        except KeyboardInterrupt:
            cancel.set()
            return 130
        except ActionError as exc:
            return _err(str(exc), exc.code)
    if args.json:
        _dump(outcome.doc)
    else:
        from sparktop.textfit import terminal_width

        for line in outcome.lines(terminal_width()):
            print(line)
    return 0


def cmd_bench_queue(config: Config, args: argparse.Namespace) -> int:
    """Serve each model through the exclusive switch, benchmark it, then print a summary."""
    from sparktop.actions import FAILED, ActionError
    from sparktop.actions import bench as actions
    from sparktop.control import Control

    def show(event) -> None:
        if event.stage == FAILED:
            print(f"sparktop: error: {event.message}", file=sys.stderr)
        elif not args.json and event.action == "queue":
            print(f"== {event.message}", flush=True)

    cancel = threading.Event()
    try:
        options = _options(config, args)
        rows = actions.queue(lambda: Control.from_config(config), list(args.queue), options,
                             report=show, cancel=cancel)  # fmt: skip
    except KeyboardInterrupt:
        cancel.set()
        return 130
    except ActionError as exc:
        return _err(str(exc), exc.code)
    if args.json:
        _dump({"queue": [row.to_json() for row in rows]})
    else:
        print("== summary")
        for row in rows:
            print(row.line())
    return 0 if all(row.error is None for row in rows) else 1


def cmd_results(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import bench as actions
    from sparktop.textfit import terminal_width

    store = actions.open_store()
    if store.problem:
        print(f"sparktop: warning: {store.problem}", file=sys.stderr)
    try:
        if args.promote is not None:
            print(actions.promote(store, config, args.promote, args.mode, force=args.force))
            return 0
        if args.champions:
            for line in actions.champion_lines(store, config):
                print(line)
            return 0
        if args.compare:
            if args.json:
                _dump(actions.compare(store, *args.compare))
                return 0
            title, lines = actions.compare_lines(store, *args.compare, terminal_width())
            print("\n".join([title, "", *lines]))
            return 0
    except ActionError as exc:
        return _err(str(exc), exc.code)
    if args.export:
        sys.stdout.write(store.export(args.export, args.model))
    elif args.json:
        _dump(actions.history_rows(store, args.model))
    else:
        print("\n".join(actions.history_lines(store, args.model, terminal_width())))
    return 0


def _dump(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2)
    print()
