"""When each running server last had a request, and which ones an `idle_stop_after` is due for.

A server counts as active when its request counters (prompt and generated tokens, from
/metrics) moved since the last look, or when it has requests running or waiting. Seen for
the first time: a server that has served nothing yet is idle since it started; one that has
served is taken as active now (its past is unknown, so it is not stopped early).

What was seen is kept in the state dir (`activity.json`), so every sparktop on the box (the
TUI, the agent, a one-shot `serve --evict`) shares it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparktop.atomic import write_json_atomic
from sparktop.servers.info import CRASHED, READY, ServerInfo
from sparktop.state import StateFile

FILE = "activity.json"


def server_key(server: ServerInfo) -> str | None:
    """The server's identity across polls and processes; None when it has no PID."""
    return f"{server.pid}:{server.port}" if server.pid is not None else None


def _tokens(server: ServerInfo) -> float | None:
    counts = [c for c in (server.prompt_tokens_total, server.gen_tokens_total) if c is not None]
    return sum(counts) if counts else None


def _busy(server: ServerInfo) -> bool:
    return (server.running or 0) + (server.waiting or 0) > 0


def _first_seen(server: ServerInfo, now: float) -> float:
    tokens = _tokens(server)
    if _busy(server) or tokens is None or tokens > 0 or server.uptime_s is None:
        return now
    return now - server.uptime_s  # has served nothing: idle since it started


class ActivityLog:
    """Last activity per running server, kept in the state dir and shared by every process."""

    def __init__(self, directory: Path | None = None) -> None:
        self.file = StateFile(FILE, directory)

    def _load(self) -> dict[str, dict[str, Any]]:
        seen = self.file.load().get("servers")
        if not isinstance(seen, dict):
            return {}
        return {k: v for k, v in seen.items() if isinstance(v, dict) and _number(v.get("at"))}

    def observe(self, servers: Sequence[ServerInfo], now: float | None = None) -> dict[str, float]:
        """Note what `servers` (all running on this box) show now; written only on a change.
        Returns the last activity per server key."""
        now = time.time() if now is None else now
        old = self._load()
        new: dict[str, dict[str, Any]] = {}
        for server in servers:
            key = server_key(server)
            if key is None or server.health == CRASHED:
                continue
            tokens, before = _tokens(server), old.get(key)
            if before is None:
                at = _first_seen(server, now)
            elif _busy(server) or (tokens is not None and tokens != before.get("tokens")):
                at = now
            else:
                at = float(before["at"])
            new[key] = {"tokens": tokens, "at": at}
        if new != old:
            merged = self._load()  # another sparktop may have written meanwhile: keep the later
            for key, value in new.items():
                theirs = merged.get(key)
                if theirs is not None and float(theirs["at"]) > value["at"]:
                    new[key] = theirs
            with contextlib.suppress(OSError):  # read-only state: still known for this look
                write_json_atomic(self.file.path, {"servers": new})
        return {key: float(value["at"]) for key, value in new.items()}

    def last_active(self, server: ServerInfo, now: float | None = None) -> float:
        """When `server` last had a request, as far as anyone saw (seconds since the epoch)."""
        now = time.time() if now is None else now
        key = server_key(server)
        seen = self._load().get(key) if key is not None else None
        return float(seen["at"]) if seen is not None else _first_seen(server, now)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class IdleState:
    """A managed server with an `idle_stop_after`: how long it has been idle, and how long
    until it is stopped (0: due now)."""

    server: ServerInfo
    idle_s: float
    after_s: float

    @property
    def stop_in_s(self) -> float:
        return max(0.0, self.after_s - self.idle_s)

    @property
    def due(self) -> bool:
        return self.idle_s >= self.after_s


def idle_states(
    servers: Sequence[ServerInfo],
    limits: Mapping[str, float],
    last_active: Mapping[str, float],
    now: float,
) -> list[IdleState]:
    """The ready servers sparktop started whose catalog entry has an idle limit (`limits`:
    entry name → seconds), with how long each has been idle."""
    out = []
    for server in servers:
        key = server_key(server)
        after = limits.get(server.catalog_name or "")
        if after is None or key is None or not server.managed or server.health != READY:
            continue
        at = last_active.get(key, now)
        out.append(IdleState(server, max(0.0, now - at), after))
    return out
