"""CLI verbs for models and servers: catalog, serve, stop, test, logs, export."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from sparktop.actions.events import FAILED
from sparktop.units import fmt_bytes

if TYPE_CHECKING:  # the verbs import their machinery when run, keeping `sparktop` quick
    from sparktop.actions import ActionError, Event
    from sparktop.config import Config
    from sparktop.control import Control


TARGET_HELP = (
    "a served or catalog name (several servers with that name: the one sparktop started "
    "for that catalog entry), a port or a PID"
)
"""What `stop`, `test` and `bench` accept as the server to act on."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    catalog = sub.add_parser("catalog", help="list catalog models with disk state and fit")
    catalog.add_argument("names", nargs="*", metavar="NAME", help="only these (fit together)")
    catalog.add_argument("--json", action="store_true", help="machine-readable JSON")

    serve = sub.add_parser("serve", help="serve a catalog model (stops its exclusive group)")
    serve.add_argument("name", metavar="NAME")
    serve.add_argument("--force", action="store_true", help="serve even if it does not fit")
    serve.add_argument("--yes", "-y", action="store_true", help="stop conflicting servers")
    serve.add_argument(
        "--evict",
        action="store_true",
        help="when it does not fit, first stop the fewest servers (least recently used, never "
        "an entry with keep: true) whose memory makes it fit",
    )
    serve.add_argument(
        "--timeout", type=float, metavar="S", help="seconds to wait for ready (more than 0)"
    )

    stop = sub.add_parser("stop", help="stop a server by name, port or PID")
    stop.add_argument("target", metavar="NAME|PORT|PID", help=TARGET_HELP)
    stop.add_argument(
        "--yes", "-y", action="store_true", help="stop a server sparktop did not start"
    )
    stop.add_argument(
        "--runtime-stop",
        action="store_true",
        help="for a Docker/Podman container sparktop did not start: run `docker stop NAME`",
    )

    test = sub.add_parser("test", help="check a server: /health, /v1/models, a chat, coherence")
    test.add_argument("target", metavar="NAME|PORT|PID|URL", help=f"{TARGET_HELP}, or its URL")
    test.add_argument("--json", action="store_true", help="machine-readable JSON")
    from sparktop.cli.fleet import add_host_option

    for verb in (serve, stop, test):
        add_host_option(verb)

    logs = sub.add_parser("logs", help="show the log of a server sparktop started")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-n", "--lines", type=int, default=40)

    export = sub.add_parser("export", help="client config for a served model")
    export.add_argument("format", choices=["opencode"])
    export.add_argument(
        "name", metavar="NAME", help="a catalog model, or a running server's name, port or PID"
    )
    export.add_argument("--host", help="host clients use to reach the box (default: as served)")


def _say(line: str, stream: TextIO | None = None) -> None:
    """Print one line that may quote a server (a name, a reply, a log line): its control
    characters shown, never sent to the terminal."""
    from sparktop.servers.printable import printable

    print(printable(line), file=stream or sys.stdout, flush=True)


def _err(message: str, code: int = 1) -> int:
    _say(f"sparktop: error: {message}", sys.stderr)
    return code


def _fail(exc: ActionError) -> int:
    """An action's error: its evidence indented, then the one line, then its exit code."""
    for line in exc.detail[-10:]:
        _say(f"    {line}", sys.stderr)
    return _err(str(exc), exc.code)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _printer(stream: TextIO | None = None) -> Callable[[Event], None]:
    """Progress events as lines (on stdout, or `stream`), each new message once; a failure's
    log lines below it."""
    last = {"message": ""}

    def show(event: Event) -> None:
        if event.message != last["message"]:
            _say(event.line(), stream)
            last["message"] = event.message
        if event.stage == FAILED:
            for line in event.detail:
                _say(f"    {line}", stream)

    return show


def _control(config: Config) -> Control:
    from sparktop.control import Control

    return Control.from_config(config)


def _json(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2)
    print()


def cmd_catalog(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import catalog as actions

    with _control(config) as control:
        for problem in control.catalog.errors:
            print(f"sparktop: error: {problem}", file=sys.stderr)
        try:
            chosen = actions.entries(control, args.names)
        except ActionError as exc:
            return _fail(exc)
        rows = list(actions.rows(control, chosen, control.poll()))
        together = control.fit_many(chosen) if len(args.names) > 1 else None
        if args.json:
            doc = {"models": [row.to_json() for row in rows], "errors": control.catalog.errors}
            if together is not None:
                doc["together"] = together.to_json()
            _json(doc)
        else:
            _catalog_table(rows, together, actions.rpc_text)
        return 1 if control.catalog.errors else 0


CATALOG_HEAD = ("NAME", "ENGINE", "QUANT", "DISK", "NEEDS", "FIT")
CATALOG_DROP = ("NEEDS", "QUANT", "ENGINE", "DISK")
"""Left out in this order until the table fits (FIT says what the model needs)."""


def _catalog_table(rows: list, together: Any, rpc_text: Callable[[Any], str]) -> None:
    """`sparktop catalog` as a table that fits the width; FIT wraps, names stay whole."""
    from sparktop.textfit import fit_table, terminal_width, wrap

    width = terminal_width()
    cells, extra = [], {}
    for row in rows:
        disk = row.disk
        on_disk = disk.label if not disk.files else fmt_bytes(disk.present_bytes)
        on_disk = {"verified": "✓ ", "partial": "… "}.get(disk.label, "") + on_disk
        cells.append((row.entry.name, row.entry.engine, row.entry.quant or "–", on_disk,
                      row.needs.replace(" GiB", "G"), row.fit.summary()))  # fmt: skip
        if row.entry.rpc is not None:
            extra[row.entry.name] = rpc_text(row.entry)
    fitted = fit_table(CATALOG_HEAD, cells, right={"DISK", "NEEDS"}, width=width,
                       drop=CATALOG_DROP, free="FIT")  # fmt: skip
    out = fitted.groups[0]
    for cell, group in zip(cells, fitted.groups[1:], strict=True):
        out += group
        if cell[0] in extra:  # under its row, after the row's wrapped FIT lines
            out += wrap(f"rpc workers: {extra[cell[0]]}", width, "    ", "  ")
    for line in out + fitted.note(width):
        print(line)
    if together is not None:
        for line in wrap(f"together: {together.summary()}", width, "  ", ""):
            print(line)


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    if args.timeout is not None and not 0 < args.timeout < float("inf"):  # NaN fails both
        return _err(f"--timeout must be more than 0 seconds, got {args.timeout:g}", 2)
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "serve")
    from sparktop.servers import waiter

    waiter.prestart()  # its interpreter starts while ours imports and checks (unused: it leaves)
    from sparktop.actions import ActionError
    from sparktop.actions import servers as actions
    from sparktop.catalog.fit import NO_FIT

    with _control(config) as control:
        for problem in control.catalog.errors:
            print(f"sparktop: warning: {problem}", file=sys.stderr)
        try:
            entry = actions.resolve_entry(control, args.name)
            plan = actions.plan_serve(control, entry)
            if actions.already_serving(plan) is None:  # else the fit says nothing new
                print(f"{entry.name}: {plan.fit.summary()}")
                for note in plan.fit.notes:
                    print(f"  note: {note}")
            confirmed = args.yes or not plan.conflicts
            open_ = not actions.serve_refusal(plan) and actions.already_serving(plan) is None
            evict = args.evict
            if plan.evict and open_:
                print(f"  to make room: {actions.evict_text(plan)}")
                if not evict and not args.force:
                    evict = _confirm(f"Stop {len(plan.evict)} server(s) to make room?")
            # asked only when nothing else refuses the serve first (port held, no fit)
            can_serve = open_ and (args.force or plan.fit.verdict != NO_FIT or evict)
            if not confirmed and can_serve:
                question = f"Serving {entry.name} stops {actions.conflicts_text(plan)}. Continue?"
                confirmed = _confirm(question)
            outcome = actions.serve(control, plan, confirmed=confirmed, force=args.force,
                                    evict=evict, report=_printer(),
                                    ready_timeout_s=args.timeout)  # fmt: skip
        except ActionError as exc:
            return _fail(exc)
        for line in outcome.lines():
            _say(line)
        return 0


def cmd_stop(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "stop")
    from sparktop.actions import ActionError
    from sparktop.actions import servers as actions

    with _control(config) as control:
        try:
            plan = actions.plan_stop(control, args.target)
            if plan.runtime_stop:
                if not (args.runtime_stop or _confirm(plan.runtime_question)):
                    return _err(plan.runtime_refusal)
                outcome = actions.stop(control, plan, confirmed=True, report=_printer(),
                                       runtime_stop=True)  # fmt: skip
            else:
                confirmed = args.yes or not plan.needs_confirmation or _confirm(plan.question)
                outcome = actions.stop(control, plan, confirmed=confirmed, report=_printer())
        except ActionError as exc:
            return _fail(exc)
        _say(outcome.message)
        return 0 if outcome.ok else 1


def cmd_test(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "test")
    from sparktop.actions import ActionError
    from sparktop.actions import servers as actions

    with _control(config) as control:
        try:
            outcome = actions.run_test(control, args.target, report=_printer(sys.stderr))
        except ActionError as exc:
            return _fail(exc)
    if args.json:
        _json(outcome.to_json())
    else:
        from sparktop.textfit import terminal_width

        for line in outcome.lines(terminal_width()):
            _say(line)
    return 0 if outcome.ok else 1


def cmd_logs(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import servers as actions

    with _control(config) as control:
        try:
            outcome = actions.logs(control, args.name, args.lines)
        except ActionError as exc:
            return _fail(exc)
    print(f"# {outcome.path}")
    for line in outcome.lines:
        _say(line)
    return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    from sparktop.actions import ActionError
    from sparktop.actions import servers as actions

    with _control(config) as control:
        try:
            outcome = actions.export_opencode(control, args.name, host=args.host)
        except ActionError as exc:
            return _fail(exc)
    print(outcome.text())
    return 0


COMMANDS = {
    "catalog": cmd_catalog,
    "serve": cmd_serve,
    "stop": cmd_stop,
    "test": cmd_test,
    "logs": cmd_logs,
    "export": cmd_export,
}
