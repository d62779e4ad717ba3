"""CLI verbs for other hosts: `hosts`, `agent`, and `--host NAME` on serve / stop / test."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from sparktop.textfit import terminal_width
from sparktop.units import fmt_bytes

if TYPE_CHECKING:
    from sparktop.config import Config
    from sparktop.fleet.hosts import Host
    from sparktop.fleet.remote import HostState


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def seconds_between(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds in low..high."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:g}..{high:g} seconds, got {text}")
        return value

    return parse


_seconds = seconds_between(0.5, 300)
_every = seconds_between(1, 86400)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from sparktop.fleet import AGENT_PORT as DEFAULT_PORT
    from sparktop.fleet import AGENT_TOKEN_ENV as DEFAULT_TOKEN_ENV

    hosts = sub.add_parser("hosts", help="the other hosts of the config: reachable or why not")
    hosts.add_argument("--json", action="store_true", help="machine-readable JSON")
    hosts.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="seconds per host (default: each host's `timeout`, 10)",
    )

    agent = sub.add_parser(
        "agent",
        help="serve this box's `status --json` and Prometheus metrics over HTTP (read-only)",
        description="Serve this box's figures, read-only: GET /status (`status --json`), "
        "GET /metrics (Prometheus text; OpenMetrics on Accept: application/openmetrics-text) "
        "and GET /health. With a token, every request needs `Authorization: Bearer TOKEN`.",
    )
    agent.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="HOST",
        help="address to listen on (default 127.0.0.1; others need a token)",
    )
    agent.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"port (default {DEFAULT_PORT})",
    )
    agent.add_argument(
        "--token-env",
        metavar="NAME",
        help="environment variable holding the bearer token "
        f"(default: {DEFAULT_TOKEN_ENV} when set)",
    )
    add_export_parser(sub)


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export-metrics",
        help="write this box's figures as DIR/sparktop.prom for node_exporter's textfile collector",
        description="Write this box's figures (the agent's /metrics) to DIR/sparktop.prom, "
        "atomically (a temp file renamed over it), for node_exporter's textfile collector.",
    )
    export.add_argument(
        "--textfile",
        required=True,
        metavar="DIR",
        help="the textfile collector's directory (--collector.textfile.directory)",
    )
    export.add_argument(
        "--every",
        type=_every,
        metavar="N",
        help="write again every N seconds until stopped (default: once)",
    )


def cmd_export_metrics(config: Config, args: argparse.Namespace) -> int:
    """`sparktop export-metrics --textfile DIR [--every N]`. With --every, SIGTERM, SIGHUP
    and ^C end the loop (exit 0) and remove the file; a single write is left to ^C as usual."""
    import signal
    import threading

    from sparktop.actions import ActionError
    from sparktop.actions.metrics import export_textfile, textfile_dir

    stop = threading.Event()

    def stopping(signum: int, frame: object) -> None:
        # set() from a helper thread: Event.set() here could wait on the lock the
        # interrupted stop.wait() holds for a few bytecodes (a handler runs in main's thread)
        threading.Thread(target=stop.set, daemon=True).start()

    if args.every is not None:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # `nohup`, a script's `&`
                signal.signal(signum, stopping)

    def warn(line: str) -> None:
        print(f"sparktop: {line}", file=sys.stderr, flush=True)

    try:
        export_textfile(config, textfile_dir(args.textfile), args.every, stop, warn)
    except ActionError as exc:
        return _err(str(exc), 2)
    except KeyboardInterrupt:
        return 130
    return 0


def add_host_option(parser: argparse.ArgumentParser) -> None:
    """`--host NAME` on serve / stop / test: run it on that host over SSH."""
    parser.add_argument(
        "--host",
        dest="on_host",
        metavar="HOST",
        help="run it on this host of the config's `hosts` (over SSH)",
    )


def _err(message: str, code: int = 1) -> int:
    print(f"sparktop: error: {message}", file=sys.stderr)
    return code


def find_host(config: Config, name: str) -> Host | None:
    return next((h for h in config.hosts if h.name == name), None)


def host_lines(state: HostState, width: int = 80) -> list[str]:
    """`sparktop hosts` for one host (or an instance a Prometheus lists): one line when it
    fits `width`, else its head line and the rest on indented lines below, cut nowhere."""
    from sparktop.fleet.remote import summary_of
    from sparktop.textfit import BELOW, wrap

    where = f"{state.transport} {state.address}"
    if not state.reachable or state.status is None:
        head, parts = f"{state.name:16} {where:32}", [f"UNREACHABLE: {state.reason}"]
    else:
        s = summary_of(state.status)
        memory = "mem ?"
        if s.memory_total_bytes:
            memory = f"mem {fmt_bytes(s.memory_used_bytes)}/{fmt_bytes(s.memory_total_bytes)}"
        gpus = ", ".join(s.gpus) if s.gpus else "no GPU"
        servers = ", ".join(s.servers) if s.servers else "none"
        latency = f"{state.latency_s:.1f}s" if state.latency_s is not None else ""
        head = f"{state.name:16} {where:32} ok {latency:>5}  {s.hostname}"
        parts = [memory, f"GPUs: {gpus}", f"servers: {servers}",
                 f"downloads: {s.downloads_active} active / {s.downloads_total}"]  # fmt: skip
    one = "  ".join([head, *parts])
    if len(one) <= width:
        return [one]
    lines = [head.rstrip()]
    for part in parts:  # each part on lines of its own, wrapped at its commas and spaces
        lines += wrap(part, width, BELOW * 2, BELOW)
    return lines


def cmd_hosts(config: Config, args: argparse.Namespace) -> int:
    """Exit 0 when every host answered, 1 when any is unreachable (or stale)."""
    from sparktop.fleet.remote import fetch_all

    states = fetch_all(config.hosts, args.timeout)
    if args.json:
        json.dump({"hosts": [s.to_json() for s in states]}, sys.stdout, indent=2)
        print()
    elif not config.hosts:
        print("no hosts in the config (see README: Other hosts)", file=sys.stderr)
    else:
        width = terminal_width()
        for state in states:
            print("\n".join(host_lines(state, width)))
    return 0 if all(s.reachable for s in states) else 1


def cmd_agent(config: Config, args: argparse.Namespace) -> int:
    """/status and /metrics read one kept Snapshot producer (rates need the last poll), each
    snapshot shared by the requests of one second."""
    from sparktop.actions.metrics import metrics_endpoint
    from sparktop.actions.servers import idle_tick
    from sparktop.collect import SnapshotProducer
    from sparktop.fleet.agent import StatusCache, run_agent

    producer = SnapshotProducer(config)
    snapshot = StatusCache(producer.collect).get

    def idle_stops() -> list[str]:  # entries with idle_stop_after: the agent stops them
        return idle_tick(producer.control, lambda: snapshot().servers)

    try:
        return run_agent(lambda: snapshot().to_json(), args.bind, args.port, args.token_env,
                         metrics_endpoint(snapshot), tick=idle_stops)  # fmt: skip
    finally:
        producer.close()


def remote_flags(verb: str, args: argparse.Namespace) -> list[str]:
    """The flags of this local command line that mean the same on the remote one."""
    flags: list[str] = []
    if verb == "serve":
        flags += ["--yes"] * bool(args.yes) + ["--force"] * bool(args.force)
        flags += ["--evict"] * bool(args.evict)
        if args.timeout is not None:
            flags += ["--timeout", f"{args.timeout:g}"]
    elif verb == "stop" and args.yes:
        flags.append("--yes")
    elif verb == "test" and args.json:
        flags.append("--json")
    return flags


def cmd_remote(config: Config, args: argparse.Namespace, verb: str) -> int:
    """`sparktop serve|stop|test … --host NAME`: the same verb run there, output streamed."""
    from sparktop.fleet.remote import ACTION_TIMEOUTS, RemoteError, run_action

    host = find_host(config, args.on_host)
    if host is None:
        known = ", ".join(h.name for h in config.hosts) or "none in the config"
        return _err(f"no host named {args.on_host!r} (known: {known})", 2)
    target = args.name if verb == "serve" else args.target
    timeout = ACTION_TIMEOUTS[verb]
    if verb == "serve" and args.timeout is not None:
        timeout = args.timeout + 120
    try:
        result = run_action(
            host, verb, target, remote_flags(verb, args), timeout=timeout, capture=False
        )
    except RemoteError as exc:
        return _err(str(exc), 2)
    if result.reason is not None:
        return _err(f"{host.name}: {result.reason}")
    sys.stderr.write(result.output)  # the remote stderr (stdout was streamed)
    return result.returncode if result.returncode is not None else 1
