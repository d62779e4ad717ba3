"""Other boxes in config.yaml: each reached over SSH (`sparktop status --json` there) or over
HTTP from a `sparktop agent`.

    hosts:
      - name: spark-02
        ssh: me@spark-02               # user@host or an alias from ~/.ssh/config
        port: 22                       # optional
        identity: ~/.ssh/id_ed25519    # optional
        options: {ProxyJump: bastion}  # optional, each becomes `-o Key=Value`
        command: [/opt/sparktop/.venv/bin/sparktop]   # remote sparktop (default: sparktop)
        timeout: 10                    # seconds for one status fetch (default 10)
      - name: strix
        agent: http://strix.lan:7377   # `sparktop agent` there
        token_env: SPARKTOP_AGENT_TOKEN   # NAME of the variable holding the token
        ssh: strix                     # optional with an agent: serve/stop/test go over SSH
      - prometheus: http://prom:9090   # every instance that exports sparktop's metrics
        name: lab                      # optional (default "prometheus")
        token_env: PROM_TOKEN          # optional: bearer token's variable, or
        user_env: PROM_USER            #   basic auth: the variables holding user and
        password_env: PROM_PASSWORD    #   password

Only the *names* of the token's (user's, password's) environment variables are kept; their
values are read when a request is made and are never stored, shown or logged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sparktop.yamlio import Lines

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
LOCAL = "local"
"""The name the fleet view gives this box; no configured host may take it."""
_KEYS = {"name", "ssh", "port", "identity", "options", "command", "agent", "token_env", "timeout",
         "prometheus", "user_env", "password_env"}  # fmt: skip
PROMETHEUS = "prometheus"
"""The default name of a `prometheus:` entry (its own row only when it fails)."""


@dataclass(frozen=True)
class Host:
    """One other box. `transport` says how its status is read: "ssh", "agent", or
    "prometheus" (then it stands for every instance that Prometheus scrapes sparktop on)."""

    name: str
    transport: str
    ssh: str | None = None
    """SSH destination: user@host, host, or an alias from the user's ~/.ssh/config."""
    port: int | None = None
    identity: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    """Extra `-o Key=Value` options for ssh."""
    command: tuple[str, ...] = ("sparktop",)
    """Remote argv prefix that runs sparktop (e.g. env VAR=... /path/to/sparktop)."""
    agent: str | None = None
    """Base URL of `sparktop agent` on that host (http://host:port)."""
    token_env: str | None = None
    timeout: float = 10.0
    prometheus: str | None = None
    """Base URL of a Prometheus that scrapes sparktop agents (or textfiles)."""
    user_env: str | None = None
    password_env: str | None = None
    """Basic auth for Prometheus: the variables holding user and password."""

    @property
    def can_act(self) -> bool:
        """Serve / stop / test run over SSH, so they need an SSH destination."""
        return self.ssh is not None

    @property
    def address(self) -> str:
        """Where the host is reached, for display (never includes a token)."""
        if self.transport == "agent":
            return self.agent or "?"
        if self.transport == PROMETHEUS:
            return self.prometheus or "?"
        return f"{self.ssh}:{self.port}" if self.port else str(self.ssh)


def bearer_headers(token_env: str | None, what: str) -> dict[str, str]:
    """Accept JSON, and `Authorization: Bearer` with the token read from `token_env` now;
    ValueError naming the variable (never its value) when it is unset."""
    headers = {"Accept": "application/json"}
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise ValueError(f"environment variable {token_env} ({what}) is not set")
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _text(value: Any, lines: Lines, index: int, key: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        problem = f"hosts[{index}].{key} must be {what}, got {value!r}"
        raise lines.error(problem, "hosts", index, key)
    return value.strip()


def _url(raw: dict[str, Any], key: str, lines: Lines, index: int, label: str) -> str | None:
    """An http(s) URL setting (agent, prometheus), without credentials in it."""
    if raw.get(key) is None:
        return None
    url = _text(raw[key], lines, index, key, "a URL").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise lines.error(f"{label}: {key} must be http://HOST:PORT, got {url!r}", "hosts",
                          index, key)  # fmt: skip
    if parts.username or parts.password:
        raise lines.error(
            f"{label}: put no credentials in the {key} URL; use token_env", "hosts", index, key
        )
    return url


def _env(raw: dict[str, Any], key: str, lines: Lines, index: int, label: str) -> str | None:
    """A setting that names an environment variable (the secret itself stays out)."""
    if raw.get(key) is None:
        return None
    name = _text(raw[key], lines, index, key, "a variable name")
    if not ENV_RE.match(name):
        raise lines.error(
            f"{label}: {key} must name an environment variable "
            "(the secret itself never goes in the config)",
            "hosts",
            index,
            key,
        )
    return name


def parse_host(raw: Any, lines: Lines, index: int) -> Host:
    """One `hosts:` item; raises YamlError (file:line: problem) at the first mistake."""
    where = ("hosts", index)
    if not isinstance(raw, dict):
        raise lines.error(f"hosts[{index}] must be a mapping with name and ssh or agent", *where)
    for key in raw:
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise lines.error(
                f"hosts[{index}]: unknown setting {key!r} (known: {known})", *where, key
            )
    default = PROMETHEUS if raw.get("prometheus") is not None and "name" not in raw else None
    name = default or _text(raw.get("name"), lines, index, "name", "a name")
    if not NAME_RE.match(name):
        raise lines.error(f"host name {name!r} may hold letters, digits, . _ -", *where, "name")
    if name == LOCAL:
        raise lines.error(f"host name {LOCAL!r} is reserved for this box", *where, "name")
    label = f"host {name}"
    ssh = identity = None
    if raw.get("ssh") is not None:
        ssh = _text(raw["ssh"], lines, index, "ssh", "user@host or an ssh alias")
        if ssh.startswith("-") or any(c.isspace() for c in ssh):
            raise lines.error(
                f"{label}: ssh must be user@host or an alias, got {ssh!r}", *where, "ssh"
            )
    agent = _url(raw, "agent", lines, index, label)
    prometheus = _url(raw, "prometheus", lines, index, label)
    if prometheus is not None and (agent or ssh):
        raise lines.error(f"{label}: prometheus stands alone (no ssh or agent)", *where)
    if ssh is None and agent is None and prometheus is None:
        raise lines.error(
            f"{label}: give ssh (user@host or alias), agent (URL) or prometheus (URL)", *where
        )
    token_env, user_env, password_env = (
        _env(raw, key, lines, index, label) for key in ("token_env", "user_env", "password_env")
    )
    if (user_env is None) != (password_env is None):
        raise lines.error(f"{label}: give both user_env and password_env, or neither", *where)
    if user_env and prometheus is None:
        raise lines.error(f"{label}: user_env/password_env are for prometheus", *where)
    port = raw.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        raise lines.error(f"{label}: port must be 1..65535, got {port!r}", *where, "port")
    if raw.get("identity") is not None:
        identity = _text(raw["identity"], lines, index, "identity", "a key file path")
    options: list[tuple[str, str]] = []
    raw_options = raw.get("options")
    if raw_options is not None:
        if not isinstance(raw_options, dict):
            raise lines.error(
                f"{label}: options must be a mapping of ssh Option: value", *where, "options"
            )
        for key, value in raw_options.items():
            if not isinstance(key, str) or not OPTION_RE.match(key):
                raise lines.error(
                    f"{label}: not an ssh option name: {key!r}", *where, "options", key
                )
            if isinstance(value, bool):
                value = "yes" if value else "no"
            if not isinstance(value, str | int) or "\n" in str(value):
                raise lines.error(
                    f"{label}: options.{key} must be a single value", *where, "options", key
                )
            options.append((key, str(value)))
    command: tuple[str, ...] = ("sparktop",)
    raw_command = raw.get("command")
    if raw_command is not None:
        if isinstance(raw_command, str) and raw_command.strip():
            command = (raw_command.strip(),)
        elif (
            isinstance(raw_command, list)
            and raw_command
            and all(isinstance(v, str) and v for v in raw_command)
        ):
            command = tuple(raw_command)
        else:
            raise lines.error(
                f"{label}: command must be a path or a list of arguments", *where, "command"
            )
    timeout = 10.0
    if raw.get("timeout") is not None:
        value = raw["timeout"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.5 <= value <= 300:
            raise lines.error(
                f"{label}: timeout must be 0.5..300 seconds, got {value!r}", *where, "timeout"
            )
        timeout = float(value)
    return Host(
        name=name,
        transport=PROMETHEUS if prometheus else "agent" if agent else "ssh",
        prometheus=prometheus,
        user_env=user_env,
        password_env=password_env,
        ssh=ssh,
        port=port,
        identity=identity,
        options=tuple(options),
        command=command,
        agent=agent,
        token_env=token_env,
        timeout=timeout,
    )


def parse_hosts(raw: Any, lines: Lines) -> tuple[Host, ...]:
    """The `hosts:` list of config.yaml."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise lines.error("hosts must be a list of hosts (- name: …)", "hosts")
    hosts: list[Host] = []
    for index, item in enumerate(raw):
        host = parse_host(item, lines, index)
        if any(h.name == host.name for h in hosts):
            raise lines.error(f"host {host.name!r} is defined twice", "hosts", index, "name")
        hosts.append(host)
    return tuple(hosts)
