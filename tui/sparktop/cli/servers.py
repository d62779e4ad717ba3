"""CLI verbs for models and servers: catalog, serve, stop, test, logs, export."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparktop.units import fmt_bytes

if TYPE_CHECKING:  # the verbs import their machinery when run, keeping `sparktop` quick
    from sparktop.catalog.entry import ModelEntry
    from sparktop.config import Config
    from sparktop.control import Control
    from sparktop.servers.info import ServerInfo
    from sparktop.servers.supervisor import ServeEvent

GIB = 1024**3


def add_parsers(sub: argparse._SubParsersAction) -> None:
    catalog = sub.add_parser("catalog", help="list catalog models with disk state and fit")
    catalog.add_argument("names", nargs="*", metavar="NAME", help="only these (fit together)")
    catalog.add_argument("--json", action="store_true", help="machine-readable JSON")

    serve = sub.add_parser("serve", help="serve a catalog model (stops its exclusive group)")
    serve.add_argument("name", metavar="NAME")
    serve.add_argument("--force", action="store_true", help="serve even if it does not fit")
    serve.add_argument("--yes", "-y", action="store_true", help="stop conflicting servers")
    serve.add_argument("--timeout", type=float, metavar="S", help="seconds to wait for ready")

    stop = sub.add_parser("stop", help="stop a server by name, port or PID")
    stop.add_argument("target", metavar="NAME|PORT|PID")
    stop.add_argument(
        "--yes", "-y", action="store_true", help="stop a server sparktop did not start"
    )

    test = sub.add_parser("test", help="check a server: /health, /v1/models, a chat, coherence")
    test.add_argument("target", metavar="NAME|URL")
    test.add_argument("--json", action="store_true", help="machine-readable JSON")
    from sparktop.cli.fleet import add_host_option

    for verb in (serve, stop, test):
        add_host_option(verb)

    logs = sub.add_parser("logs", help="show the log of a server sparktop started")
    logs.add_argument("name", metavar="NAME")
    logs.add_argument("-n", "--lines", type=int, default=40)

    export = sub.add_parser("export", help="client config for a served model")
    export.add_argument("format", choices=["opencode"])
    export.add_argument("name", metavar="NAME")
    export.add_argument("--host", help="host clients use to reach the box (default: as served)")


def _err(message: str, code: int = 1) -> int:
    print(f"sparktop: error: {message}", file=sys.stderr)
    return code


def _servers(control: Control) -> tuple[ServerInfo, ...]:
    return control.poll()


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _printer() -> Callable[[ServeEvent], None]:
    last = {"message": ""}

    def show(event: ServeEvent) -> None:
        if event.message != last["message"]:
            print(f"[{event.elapsed_s:6.1f}s] {event.stage}: {event.message}", flush=True)
            last["message"] = event.message
        if event.stage == "failed":
            for line in event.log_tail:
                print(f"    {line}", flush=True)

    return show


def _control(config: Config) -> Control:
    from sparktop.control import Control

    return Control.from_config(config)


def cmd_catalog(config: Config, args: argparse.Namespace) -> int:
    from sparktop.catalog.files import disk_state
    from sparktop.servers.supervisor import ServeError

    with _control(config) as control:
        for problem in control.catalog.errors:
            print(f"sparktop: error: {problem}", file=sys.stderr)
        servers = _servers(control)
        entries = list(control.catalog)
        if args.names:
            try:
                entries = [control.resolve_entry(n) for n in args.names]
            except ServeError as exc:
                return _err(str(exc))
        rows = []
        for entry in entries:
            disk = disk_state(entry)
            fit = control.fit(entry, servers)
            rows.append((entry, disk, fit))
        together = control.fit_many(entries) if len(args.names) > 1 else None
        if args.json:
            doc = {
                "models": [
                    {
                        "name": e.name,
                        "engine": e.engine,
                        "repo": e.repo,
                        "quant": e.quant,
                        "served_name": e.serve.served_name,
                        "port": e.serve.port,
                        "proxy_port": e.serve.proxy.port if e.serve.proxy else None,
                        "exclusive": e.serve.exclusive,
                        "context": e.serve.context,
                        "size_bytes": e.size_bytes,
                        "local_dir": str(e.local_dir) if e.local_dir else None,
                        "disk": {
                            "state": d.label,
                            "present_bytes": d.present_bytes,
                            "partial_bytes": d.partial_bytes,
                            "files": d.files,
                            "complete": d.complete,
                            "verified": d.verified,
                        },
                        "fit": f.to_json(),
                        "rpc_workers": _rpc_json(e),
                        "source": e.source,
                    }
                    for e, d, f in rows
                ],
                "errors": control.catalog.errors,
            }
            if together is not None:
                doc["together"] = together.to_json()
            json.dump(doc, sys.stdout, indent=2)
            print()
        else:
            print(f"{'NAME':28} {'ENGINE':9} {'QUANT':11} {'DISK':>9} {'NEEDS':>9}  FIT")
            for entry, disk, fit in rows:
                on_disk = disk.label if not disk.files else fmt_bytes(disk.present_bytes)
                on_disk = {"verified": "✓ ", "partial": "… "}.get(disk.label, "") + on_disk
                need = f"{fit.need_bytes / GIB:.1f}G" if fit.need_bytes else "?"
                print(
                    f"{entry.name:28} {entry.engine:9} {(entry.quant or '–'):11} "
                    f"{on_disk:>9} {need:>9}  {fit.summary()}"
                )
                if entry.rpc is not None:
                    print(f"{'':28} rpc workers: {_rpc_text(entry)}")
            if together is not None:
                print(f"together: {together.summary()}")
        return 1 if control.catalog.errors else 0


def _rpc_json(entry: ModelEntry) -> list[dict] | None:
    """A catalog entry's llama.cpp RPC workers for `catalog --json` (None: not split)."""
    if entry.rpc is None:
        return None
    return [
        {"endpoint": w.endpoint, "host": w.host, "start": w.start, "memory_gb": w.memory_gb,
         "args": list(w.args)}
        for w in entry.rpc.workers
    ]  # fmt: skip


def _rpc_text(entry: ModelEntry) -> str:
    parts = []
    for w in entry.rpc.workers if entry.rpc else ():
        notes = [w.host or "this machine"] + (["start"] if w.start else [])
        if w.memory_gb is not None:
            notes.append(f"{w.memory_gb:g} GB")
        parts.append(f"{w.endpoint} ({', '.join(notes)})")
    return ", ".join(parts)


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "serve")
    from sparktop.servers.supervisor import ServeError

    with _control(config) as control:
        for problem in control.catalog.errors:
            print(f"sparktop: warning: {problem}", file=sys.stderr)
        try:
            entry = control.resolve_entry(args.name)
        except ServeError as exc:
            return _err(str(exc))
        servers = _servers(control)
        plan = control.supervisor.plan(entry, servers, control.catalog.entries)
        print(f"{entry.name}: {plan.fit.summary()}")
        for note in plan.fit.notes:
            print(f"  note: {note}")
        if plan.fit.verdict == "does not fit" and not args.force:
            return _err(f"{entry.name} does not fit: {plan.fit.summary()} (--force to try anyway)")
        if plan.conflicts and not args.yes:
            names = ", ".join(f"{s.name} (pid {s.pid}, port {s.port})" for s in plan.conflicts)
            if not _confirm(f"Serving {entry.name} stops {names}. Continue?"):
                return _err(f"serving {entry.name} would stop {names}; pass --yes to do it")
        try:
            record = control.supervisor.serve(
                plan, force=args.force, progress=_printer(), ready_timeout_s=args.timeout
            )
        except ServeError as exc:
            for line in exc.log_tail[-10:]:
                print(f"    {line}", file=sys.stderr)
            return _err(str(exc))
        print(
            f"{entry.serve.served_name} is ready: http://{record.host}:{record.port}/v1 "
            f"(pid {record.pid}, log {record.log_path})"
        )
        if record.rpc_workers:
            workers = ", ".join(
                f"{w['endpoint']} (" + (f"pid {w['pid']}" if w.get("started") else "running") + ")"
                for w in record.rpc_workers
            )
            print(f"  split over rpc workers: {workers}")
        return 0


def cmd_stop(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "stop")
    from sparktop.servers.supervisor import ServeError

    with _control(config) as control:
        servers = _servers(control)
        try:
            server = control.resolve_server(args.target, servers)
        except ServeError as exc:
            return _err(str(exc))
        if not server.managed and not args.yes:
            question = f"{server.name} (pid {server.pid}) was not started by sparktop. Stop it?"
            if not _confirm(question):
                return _err(
                    f"{server.name} (pid {server.pid}) was not started by sparktop; "
                    "pass --yes to stop it"
                )
        try:
            result = control.supervisor.stop(server, progress=_printer())
        except ServeError as exc:
            return _err(str(exc))
        freed = result.memory_returned_bytes
        memory = f"; {fmt_bytes(freed)} of memory came back" if freed and freed > 0 else ""
        port = "port free" if result.port_freed else f"port {server.port} STILL IN USE"
        how = " (forced with SIGKILL)" if result.forced else ""
        print(f"stopped {server.name} (pid {server.pid}){how} in {result.elapsed_s:.1f} s: "
              f"{port}{memory}")  # fmt: skip
        return 0 if result.port_freed else 1


def cmd_test(config: Config, args: argparse.Namespace) -> int:
    if getattr(args, "on_host", None):
        from sparktop.cli.fleet import cmd_remote

        return cmd_remote(config, args, "test")
    from sparktop.servers.smoke import run_smoke
    from sparktop.servers.supervisor import ServeError

    model = None
    token = None
    if args.target.startswith(("http://", "https://")):
        url = args.target.rstrip("/")
        url = url[:-3] if url.endswith("/v1") else url
    else:
        with _control(config) as control:
            servers = _servers(control)
            try:
                server = control.resolve_server(args.target, servers)
            except ServeError as exc:
                return _err(str(exc))
            if server.url is None:
                return _err(f"{server.name} has no known port")
            url = server.url
            model = server.name
            entry = control.catalog.get(server.catalog_name or "")
            if entry and entry.serve.proxy and entry.serve.proxy.token_env:
                token = os.environ.get(entry.serve.proxy.token_env)
    result = run_smoke(url, model, token=token)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(f"testing {result.model or '?'} at {url}")
        for check in result.checks:
            mark = "PASS" if check.ok else "FAIL"
            latency = f"{check.latency_s * 1000:7.0f} ms" if check.latency_s is not None else ""
            print(f"  {mark}  {check.name:22} {latency}  {check.detail}")
        if result.coherence is not None:
            mark = "PASS" if result.coherence.ok else "FAIL"
            print(f"  {mark}  {'coherence':22} {'':10}  {result.coherence.summary()}")
        if result.reply:
            print("  reply: " + result.reply.strip().replace("\n", " ")[:300])
        if result.timings.get("predicted_per_second"):
            t = result.timings
            print(
                f"  server timings: prompt {t.get('prompt_per_second', 0):.1f} t/s, "
                f"generation {t.get('predicted_per_second', 0):.1f} t/s"
            )
    return 0 if result.ok else 1


def cmd_logs(config: Config, args: argparse.Namespace) -> int:
    from sparktop.servers.registry import tail

    with _control(config) as control:
        records = [
            r for r in control.registry.load() if args.name in (r.name, r.served_name, str(r.pid))
        ]
        if not records:
            return _err(f"no server named {args.name!r} was started by sparktop")
        record = max(records, key=lambda r: r.started_at)
        print(f"# {record.log_path}")
        for line in tail(record.log_path, args.lines):
            print(line)
        return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    from sparktop.servers.export import opencode_entry
    from sparktop.servers.supervisor import ServeError

    with _control(config) as control:
        try:
            entry = control.resolve_entry(args.name)
        except ServeError as exc:
            return _err(str(exc))
        json.dump(opencode_entry(entry, host=args.host), sys.stdout, indent=2)
        print()
        return 0


COMMANDS = {
    "catalog": cmd_catalog,
    "serve": cmd_serve,
    "stop": cmd_stop,
    "test": cmd_test,
    "logs": cmd_logs,
    "export": cmd_export,
}
