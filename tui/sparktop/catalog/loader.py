"""Load the model catalog: shipped `catalog/*.yaml`, then the user's `<config>/catalog/*.yaml`.

A user entry whose name matches a shipped one overrides it key by key (so a user can set just
`local_dir`); a new name adds an entry. Every problem becomes one line naming file:line, and
the entries without problems still load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from sparktop import paths
from sparktop.catalog.entry import (
    GB,
    RUNTIMES,
    Architecture,
    ContainerSpec,
    KnownSpeed,
    ModelEntry,
    ProxySpec,
    RpcSpec,
    RpcWorker,
    ServeProfile,
)
from sparktop.engines import ADAPTERS, ENGINE_NAMES, adapter
from sparktop.yamlio import Lines, YamlError, load_yaml

SHIPPED_DIR = paths.shipped_dir("shipped_catalog", "catalog")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
MODES = ("ask", "code", "architect", "debug", "autocomplete")

_ENTRY_KEYS = {
    "name", "description", "engine", "repo", "include", "files", "local_dir", "quant",
    "bits_per_weight", "size_gb", "params_b", "architecture", "serve", "speeds", "modes", "tags",
    "rpc", "keep", "idle_stop_after",
}  # fmt: skip
_SERVE_KEYS = {
    "served_name", "host", "port", "context", "args", "argv", "env", "exclusive", "proxy",
    "cache_type", "parallel", "ready_timeout_s", "container",
}  # fmt: skip
_CONTAINER_KEYS = {"image", "runtime", "gpus", "volumes", "ipc", "args"}
_PROXY_KEYS = {"port", "host", "requires_token", "token_env"}
_ARCH_KEYS = {"layers", "kv_heads", "head_dim", "attention_layers"}
_SPEED_KEYS = {"hardware", "prompt_tps", "gen_tps", "source"}
_RPC_KEYS = {"workers"}
_WORKER_KEYS = {"endpoint", "host", "start", "memory_gb", "args", "binary"}
ENDPOINT_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})$")


class EntryError(Exception):
    """Problems in one entry; str() is one line per problem, ``file:line: model NAME: message``."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str | None:
    """`a`, `a or b`, `a, b or c`: the choices that start with `word`, then the close
    misspellings of it (difflib); None when nothing is close."""
    choices = list(dict.fromkeys(choices))
    found = [c for c in choices if c.startswith(word) and c != word]
    found += get_close_matches(word, choices, n=n, cutoff=0.6)
    found = list(dict.fromkeys(found))[:n]
    if not found:
        return None
    return found[0] if len(found) == 1 else f"{', '.join(found[:-1])} or {found[-1]}"


def _unknown(label: str, key: str, allowed: Iterable[str], quote: bool = True) -> str:
    """`unknown key 'serve.prot' (did you mean port?)`, else with the known keys."""
    close = did_you_mean(key, allowed, n=1)
    hint = f"did you mean {close}?" if close else f"known: {', '.join(sorted(allowed))}"
    shown = repr(label) if quote else label
    return f"unknown key {shown} ({hint})"


def _not_one_of(label: str, value: object, allowed: Iterable[str]) -> str:
    """`engine must be one of a, b, got 'x'`, with the close choice when there is one."""
    allowed = list(allowed)
    close = did_you_mean(str(value), allowed, n=1) if isinstance(value, str) else None
    hint = f" (did you mean {close}?)" if close else ""
    return f"{label} must be one of {', '.join(allowed)}, got {value!r}{hint}"


@dataclass
class Catalog:
    entries: dict[str, ModelEntry] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """Every problem, one line each: ``file:line: model NAME: message``."""
    files: list[Path] = field(default_factory=list)
    invalid: dict[str, list[str]] = field(default_factory=dict)
    """Entries left out for their problems: name -> those problems' lines."""

    def get(self, name: str) -> ModelEntry | None:
        return self.entries.get(name)

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def by_served_name(self, served: str) -> ModelEntry | None:
        for entry in self.entries.values():
            if entry.serve.served_name == served:
                return entry
        return None


@dataclass
class _Source:
    """Raw entry mapping plus where each of its keys was written."""

    data: dict[str, Any]
    where: dict[tuple[Any, ...], tuple[Lines, tuple[Any, ...]]]

    def at(self, *keys: Any) -> str:
        """file:line of the deepest key of `keys` that we know."""
        for end in range(len(keys), -1, -1):
            found = self.where.get(tuple(keys[:end]))
            if found is not None:
                lines, prefix = found
                line = lines.line(*prefix, *keys)  # list items are only in `lines`
                return f"{lines.path}:{line}" if line else str(lines.path)
        return "?"


def _index(data: Any, lines: Lines, prefix: tuple[Any, ...], rel: tuple[Any, ...], out: dict):
    out[rel] = (lines, prefix)
    if isinstance(data, dict):
        for key, value in data.items():
            _index(value, lines, prefix, (*rel, key), out)


def _merge(base: _Source, over: _Source) -> _Source:
    data = dict(base.data)
    where = dict(base.where)
    for key, value in over.data.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = _merge(
                _Source(data[key], {k[1:]: v for k, v in where.items() if k[:1] == (key,)}),
                _Source(value, {k[1:]: v for k, v in over.where.items() if k[:1] == (key,)}),
            )
            data[key] = merged.data
            where = {k: v for k, v in where.items() if k[:1] != (key,)}
            where.update({(key, *k): v for k, v in merged.where.items()})
        else:
            data[key] = value
            where = {k: v for k, v in where.items() if k[:1] != (key,)}
            where.update({k: v for k, v in over.where.items() if k[:1] == (key,)})
    where[()] = over.where[()]
    return _Source(data, where)


class _Check:
    """Typed field readers: a problem is noted with file:line (`problems`) and the reader
    returns nothing, so one pass finds every problem of an entry."""

    def __init__(self, src: _Source, name: str) -> None:
        self.src = src
        self.name = name
        self.problems: list[tuple[str, str]] = []
        """(file:line, the whole line), in the order found."""
        self.suggested: set[tuple[Any, ...]] = set()
        """Key paths an unknown key was probably meant as (their `required` is not repeated)."""

    def fail(self, message: str, *keys: Any) -> EntryError:
        where = self.src.at(*keys)
        return EntryError(f"{where}: model {self.name}: {message}")

    def note(self, message: str, *keys: Any) -> None:
        where = self.src.at(*keys)
        self.problems.append((where, f"{where}: model {self.name}: {message}"))

    def error(self) -> EntryError | None:
        """All problems noted, one line each in file order; None when there are none."""
        if not self.problems:
            return None
        ordered = sorted(self.problems, key=lambda p: _place(p[0]))
        return EntryError("\n".join(line for _, line in ordered))

    def get(self, *keys: Any) -> Any:
        value: Any = self.src.data
        for key in keys:
            in_list = isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)
            in_dict = isinstance(value, dict) and key in value
            if not (in_list or in_dict):
                return None
            value = value[key]
        return value

    def required(self, *keys: Any) -> None:
        """Note that `keys` is missing, unless an unknown key there was probably meant as it."""
        if keys not in self.suggested:
            self.note(f"{'.'.join(map(str, keys))} is required", *keys[:-1])

    def string(self, *keys: Any, required: bool = False) -> str | None:
        value = self.get(*keys)
        if value is None:
            if required:
                self.required(*keys)
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.note(f"{'.'.join(map(str, keys))} must be text, got {value!r}", *keys)
            return None
        return str(value)

    def number(self, *keys: Any, low: float, high: float, integer: bool = False) -> Any:
        value = self.get(*keys)
        if value is None:
            return None
        label = ".".join(map(str, keys))
        kind = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "a whole number" if integer else "a number"
            self.note(f"{label} must be {what}, got {value!r}", *keys)
            return None
        if not low <= value <= high:
            self.note(f"{label} must be between {low:g} and {high:g}, got {value}", *keys)
            return None
        return value

    def strings(self, *keys: Any) -> tuple[str, ...]:
        value = self.get(*keys)
        if value is None:
            return ()
        label = ".".join(map(str, keys))
        if isinstance(value, str):
            self.note(
                f"{label} must be a list (one item per argument), not a string: {value!r}",
                *keys,
            )
            return ()
        if not isinstance(value, list):
            self.note(f"{label} must be a list, got {value!r}", *keys)
            return ()
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.note(f"{label} items must be text, got {item!r}", *keys)
                return ()
        return tuple(str(item) for item in value)

    def keys(self, allowed: set[str], *keys: Any) -> bool:
        """Note every unknown key of the mapping at `keys`; False when it is no mapping."""
        value = self.get(*keys) if keys else self.src.data
        if value is None:
            return True
        if not isinstance(value, dict):
            self.note(f"{'.'.join(map(str, keys))} must be a mapping", *keys)
            return False
        for key in value:
            if key not in allowed:
                label = ".".join(map(str, (*keys, key)))
                self.note(_unknown(label, str(key), allowed), *keys, key)
                close = get_close_matches(str(key), allowed, n=1)
                if close:
                    self.suggested.add((*keys, close[0]))
        return True


def _place(where: str) -> tuple[str, int]:
    """`file:line` as (file, line) to sort by."""
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() else (where, 0)


def _port(check: _Check, *keys: str, required: bool = False) -> int | None:
    port = check.number(*keys, low=1, high=65535, integer=True)
    if port is None and required and check.get(*keys) is None:
        check.required(*keys)
    return port


def _rpc(check: _Check, engine: str) -> RpcSpec | None:
    """The `rpc:` section: llama.cpp RPC workers the model is split over."""
    if check.get("rpc") is None:
        return None
    if not adapter(engine).splits_over_rpc:
        splitting = " or ".join(n for n, a in ADAPTERS.items() if a.splits_over_rpc)
        raise check.fail(f"rpc (split serving) needs engine {splitting}, not {engine}", "rpc")
    check.keys(_RPC_KEYS, "rpc")
    raw = check.get("rpc", "workers")
    if not isinstance(raw, list) or not raw:
        raise check.fail("rpc.workers must be a non-empty list of workers", "rpc", "workers")
    workers: list[RpcWorker] = []
    for i, item in enumerate(raw):
        at = ("rpc", "workers", i)
        label = f"rpc.workers[{i}]"
        if isinstance(item, str):  # shorthand: just the endpoint
            item = {"endpoint": item}
        if not isinstance(item, dict):
            raise check.fail(f"{label} must be a mapping with an endpoint", *at)
        unknown = sorted(set(map(str, item)) - _WORKER_KEYS)
        if unknown:
            problem = _unknown(f"{label}.{unknown[0]}", unknown[0], _WORKER_KEYS, quote=False)
            raise check.fail(problem, *at, unknown[0])
        endpoint = item.get("endpoint")
        match = ENDPOINT_RE.match(endpoint) if isinstance(endpoint, str) else None
        if match is None:
            raise check.fail(
                f"{label}.endpoint must be address:port (e.g. 127.0.0.1:50052), got {endpoint!r}",
                *at,
                "endpoint",
            )
        port = int(match.group(1))
        if not 1 <= port <= 65535:
            raise check.fail(
                f"{label}.endpoint port must be between 1 and 65535, got {port}", *at, "endpoint"
            )
        if endpoint in (w.endpoint for w in workers):
            raise check.fail(f"{label}.endpoint {endpoint} is listed twice", *at, "endpoint")
        start = item.get("start", False)
        if not isinstance(start, bool):
            raise check.fail(f"{label}.start must be true or false", *at, "start")
        host = check.string(*at, "host")
        if host is not None and not NAME_RE.match(host):
            raise check.fail(f"{label}.host must be a host name, got {host!r}", *at, "host")
        memory = check.number(*at, "memory_gb", low=0, high=1_000_000)
        workers.append(
            RpcWorker(
                endpoint=endpoint,
                host=host,
                start=start,
                memory_gb=float(memory) if memory is not None else None,
                args=check.strings(*at, "args"),
                binary=check.string(*at, "binary"),
            )
        )
    return RpcSpec(workers=tuple(workers))


def _engine(check: _Check) -> str | None:
    """The entry's engine, or None (noted) when missing or unknown."""
    engine = check.string("engine", required=True)
    if engine is not None and engine not in ENGINE_NAMES:
        check.note(_not_one_of("engine", engine, ENGINE_NAMES), "engine")
        return None
    return engine


def _argv(check: _Check, engine: str | None) -> tuple[str, ...]:
    """serve.argv, which only (and always) the engines that take a full argv have."""
    argv = check.strings("serve", "argv")
    if engine is None:
        return argv
    takes_argv = adapter(engine).takes_argv
    if takes_argv and check.get("serve", "argv") in (None, []):
        check.note(f"engine {engine!r} needs serve.argv (a list)", "serve")
    if argv and not takes_argv:
        with_argv = " or ".join(repr(n) for n, a in ADAPTERS.items() if a.takes_argv)
        check.note(
            f"serve.argv is only for engine {with_argv}; use serve.args for {engine}",
            "serve",
            "argv",
        )
    return argv


def _proxy(check: _Check) -> ProxySpec | None:
    if check.get("serve", "proxy") is None or not check.keys(_PROXY_KEYS, "serve", "proxy"):
        return None
    port = _port(check, "serve", "proxy", "port", required=True)
    requires = check.get("serve", "proxy", "requires_token")
    if requires is not None and not isinstance(requires, bool):
        check.note("serve.proxy.requires_token must be true or false",
                   "serve", "proxy", "requires_token")  # fmt: skip
        return None
    return ProxySpec(
        port=port or 0,
        host=check.string("serve", "proxy", "host") or "127.0.0.1",
        requires_token=True if requires is None else requires,
        token_env=check.string("serve", "proxy", "token_env"),
    )


def _container(check: _Check) -> ContainerSpec | None:
    """serve.container: the image and how to run it (Docker or Podman)."""
    where = ("serve", "container")
    if check.get(*where) is None or not check.keys(_CONTAINER_KEYS, *where):
        return None
    image = check.string(*where, "image", required=True)
    runtime = check.string(*where, "runtime") or "docker"
    if runtime not in RUNTIMES:
        check.note(_not_one_of("serve.container.runtime", runtime, RUNTIMES), *where, "runtime")
    gpus = check.get(*where, "gpus")
    if image is None or runtime not in RUNTIMES:
        return None
    return ContainerSpec(
        image=image,
        runtime=runtime,
        gpus=None if gpus is None else str(gpus),
        volumes=check.strings(*where, "volumes"),
        ipc=check.string(*where, "ipc"),
        args=check.strings(*where, "args"),
    )


def _serve(check: _Check, name: str, engine: str | None) -> ServeProfile | None:
    """The serve profile; None when there is no `serve:` mapping (noted)."""
    if not isinstance(check.get("serve"), dict):
        check.note("serve (the serve profile) is required and must be a mapping", "serve")
        return None
    check.keys(_SERVE_KEYS, "serve")
    env_raw = check.get("serve", "env") or {}
    if not isinstance(env_raw, dict):
        check.note("serve.env must be a mapping of NAME: value", "serve", "env")
        env_raw = {}
    cache_type = check.string("serve", "cache_type") or "f16"
    if cache_type not in CACHE_TYPES:
        check.note(_not_one_of("serve.cache_type", cache_type, CACHE_TYPES),
                   "serve", "cache_type")  # fmt: skip
    timeout = check.number("serve", "ready_timeout_s", low=1, high=86400)
    return ServeProfile(
        served_name=check.string("serve", "served_name") or name,
        port=_port(check, "serve", "port", required=True) or 0,
        host=check.string("serve", "host") or "127.0.0.1",
        context=check.number("serve", "context", low=1, high=10_000_000, integer=True),
        args=check.strings("serve", "args"),
        argv=_argv(check, engine),
        env=tuple((str(k), str(v)) for k, v in env_raw.items()),
        exclusive=check.string("serve", "exclusive"),
        proxy=_proxy(check),
        cache_type=cache_type,
        parallel=check.number("serve", "parallel", low=1, high=1024, integer=True) or 1,
        ready_timeout_s=float(timeout or 900.0),
        container=_container(check),
    )


def _architecture(check: _Check) -> Architecture | None:
    if check.get("architecture") is None or not check.keys(_ARCH_KEYS, "architecture"):
        return None
    values = {
        key: check.number("architecture", key, low=1, high=100_000, integer=True)
        for key in _ARCH_KEYS
    }
    needed = ("layers", "kv_heads", "head_dim")
    missing = [k for k in needed if check.get("architecture", k) is None]
    if missing:
        check.note(f"architecture needs {', '.join(missing)}", "architecture")
        return None
    return Architecture(**values)  # type: ignore[arg-type]


def _speeds(check: _Check) -> tuple[KnownSpeed, ...]:
    raw = check.get("speeds") or []
    if not isinstance(raw, list):
        check.note("speeds must be a list", "speeds")
        return ()
    speeds = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("hardware"):
            check.note("each speed needs a hardware: it was measured on", "speeds", i)
            continue
        for key in sorted(set(map(str, item)) - _SPEED_KEYS):
            check.note(_unknown(f"speeds[{i}].{key}", key, _SPEED_KEYS), "speeds", i, key)
        speeds.append(
            KnownSpeed(
                hardware=str(item["hardware"]),
                prompt_tps=check.number("speeds", i, "prompt_tps", low=0, high=1e7),
                gen_tps=check.number("speeds", i, "gen_tps", low=0, high=1e7),
                source=item.get("source"),
            )
        )
    return tuple(speeds)


DURATION_RE = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?"
    r"(?:(\d+(?:\.\d+)?)s)?$"
)
_DURATION_UNITS = (86400, 3600, 60, 1)


def parse_duration(value: object) -> float | None:
    """Seconds from `2h`, `90m`, `1h30m`, `45s`, `1d` or a plain number of seconds; None
    when it is none of these (or not above zero)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := DURATION_RE.match(value.strip().replace(" ", ""))):
        parts = match.groups()
        if not any(parts):
            return None
        seconds = sum(float(p) * unit for p, unit in zip(parts, _DURATION_UNITS, strict=True) if p)
    else:
        return None
    return seconds if seconds > 0 else None


def _idle_stop_after(check: _Check) -> float | None:
    """`idle_stop_after`: how long a served model may go without a request."""
    value = check.get("idle_stop_after")
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds is None:
        check.note(
            f"idle_stop_after must be a duration above zero such as 2h, 30m, 1h30m or 90s, "
            f"got {value!r}",
            "idle_stop_after",
        )
    return seconds


def _flag(check: _Check, key: str) -> bool:
    """A true/false key; anything else is noted."""
    value = check.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        check.note(f"{key} must be true or false, got {value!r}", key)
        return False
    return value


def _files(check: _Check) -> tuple[str, ...]:
    files = check.strings("files")
    for item in files:
        if os.path.isabs(item) or ".." in Path(item).parts:
            check.note(f"files must be relative to local_dir, got {item!r}", "files")
    return files


def build_entry(src: _Source) -> ModelEntry:
    """Validate one merged entry; raise EntryError naming every problem, one line each."""
    raw_name = src.data.get("name")
    name = str(raw_name) if raw_name is not None else "?"
    check = _Check(src, name)
    if not isinstance(raw_name, str) or not NAME_RE.match(raw_name):
        check.note(
            f"name must be letters, digits, '.', '_' or '-' (no spaces), got {raw_name!r}",
            "name",
        )
    check.keys(_ENTRY_KEYS)
    engine = _engine(check)
    serve = _serve(check, name, engine)
    modes = check.strings("modes")
    for mode in modes:
        if mode not in MODES:
            check.note(f"unknown mode {mode!r} (known: {', '.join(MODES)})", "modes")
    local_dir = check.string("local_dir")
    size_gb = check.number("size_gb", low=0, high=100_000)
    rpc = None
    if engine is not None:
        try:
            rpc = _rpc(check, engine)
        except EntryError as exc:  # the rpc section stops at its first problem
            check.problems.append((check.src.at("rpc"), str(exc)))
    entry = ModelEntry(
        name=name,
        engine=engine or "?",
        serve=serve or ServeProfile(served_name=name, port=0),
        description=check.string("description") or "",
        repo=check.string("repo"),
        include=check.strings("include"),
        files=_files(check),
        local_dir=Path(os.path.expandvars(local_dir)).expanduser() if local_dir else None,
        quant=check.string("quant"),
        bits_per_weight=check.number("bits_per_weight", low=0.5, high=64),
        size_bytes=int(size_gb * GB) if size_gb is not None else None,
        params_b=check.number("params_b", low=0, high=100_000),
        architecture=_architecture(check),
        speeds=_speeds(check),
        modes=modes,
        source=src.at(),
        tags=check.strings("tags"),
        rpc=rpc,
        keep=_flag(check, "keep"),
        idle_stop_after_s=_idle_stop_after(check),
    )
    error = check.error()
    if error is not None:
        raise error
    return entry


def _read_file(path: Path, errors: list[str]) -> list[_Source]:
    try:
        data, lines = load_yaml(path)
    except YamlError as exc:
        errors.append(str(exc))
        return []
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
        errors.append(f"{path}:1: expected a mapping with a `models:` list")
        return []
    out = []
    for index, item in enumerate(data.get("models") or []):
        if not isinstance(item, dict):
            line = lines.line("models", index)
            errors.append(f"{path}:{line}: models[{index}] must be a mapping with a name")
            continue
        where: dict = {}
        _index(item, lines, ("models", index), (), where)
        out.append(_Source(item, where))
    return out


def catalog_dirs() -> list[Path]:
    return [SHIPPED_DIR, paths.config_dir() / "catalog"]


def load_catalog(dirs: Iterable[Path] | None = None) -> Catalog:
    """Read every catalog file in order; later files override earlier entries by name."""
    catalog = Catalog()
    merged: dict[str, _Source] = {}
    for directory in dirs if dirs is not None else catalog_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
            catalog.files.append(path)
            seen_here: set[str] = set()
            for src in _read_file(path, catalog.errors):
                name = src.data.get("name")
                if not isinstance(name, str):
                    catalog.errors.append(f"{src.at()}: a model entry needs a name")
                    continue
                if name in seen_here:
                    catalog.errors.append(
                        f"{src.at('name')}: model {name}: defined twice in {path.name}"
                    )
                    continue
                seen_here.add(name)
                merged[name] = _merge(merged[name], src) if name in merged else src
    for name, src in merged.items():
        try:
            entry = build_entry(src)
        except EntryError as exc:
            problems = str(exc).splitlines()
            catalog.errors += problems
            catalog.invalid[name] = problems
            continue
        catalog.entries[name] = entry
    return catalog
