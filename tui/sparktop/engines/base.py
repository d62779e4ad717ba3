"""What every engine adapter answers: the one interface behind which engines differ.

Discovery, polling, serving, the fit check and the catalog ask an adapter instead of testing
an engine's name, so adding an engine is one new module here (the shape Harlequin gives its
database adapters). Nothing in this package imports the rest of sparktop at module level
beyond the catalog's plain dataclasses, so any layer may ask an adapter.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry
    from sparktop.servers.http import Connection

GIB = 1024**3

SERVER, CHILD = "server", "child"
"""Launch roles: a server itself, or a worker process of one (never a server of its own)."""

Configured = Mapping[str, Sequence[str]]
"""config.yaml `engines:`: engine name → the argv prefix that starts it."""


@dataclass(frozen=True)
class MetricNames:
    """Prometheus names per quantity, newest first (engines renamed some over versions)."""

    running: tuple[str, ...]
    waiting: tuple[str, ...]
    prompt_tokens: tuple[str, ...]
    generated_tokens: tuple[str, ...]
    kv_usage: tuple[str, ...]
    kv_usage_scale: float = 1.0
    """Multiply the kv_usage value by this to get a 0..1 fraction."""
    ttft_seconds: tuple[str, ...] = ()
    """Histograms (base names: `_sum`, `_count`) a benchmark reads before and after each
    request for the server's own figures: time to first token, prefill and decode time."""
    prefill_seconds: tuple[str, ...] = ()
    decode_seconds: tuple[str, ...] = ()


NO_METRICS = MetricNames((), (), (), (), ())


@dataclass(frozen=True)
class Launch:
    """What a command line says about a server."""

    engine: str
    role: str  # SERVER or CHILD
    port: int | None = None
    host: str | None = None
    served_name: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class ServeRequest:
    """What to serve and where, in a catalog entry's engine-neutral words."""

    binary: tuple[str, ...]
    """The argv prefix that starts the engine (`EngineAdapter.binary`)."""
    model: str
    served_name: str
    host: str
    port: int
    context: int | None = None
    args: tuple[str, ...] = ()
    """The catalog's extra engine arguments; they come last."""
    template: tuple[str, ...] = ()
    """The catalog's whole serve.argv, for engines that take one."""
    rpc: tuple[str, ...] = ()
    """Endpoints of the RPC workers to split the model over."""


class EngineError(Exception):
    """Why an engine cannot be started as asked; str() is the one line users see."""


@dataclass
class EngineMemo:
    """What an adapter remembers about one server between polls (the monitor keeps one each)."""

    asked_at: float = 0.0
    """When the adapter last asked its own extra endpoint (monotonic seconds)."""
    kv_usage: float | None = None


# -- reading command lines ----------------------------------------------------------------


def option(args: Sequence[str], *names: str) -> str | None:
    """The value of the first of `names` in `args` (`--name value` or `--name=value`)."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def has_option(args: Sequence[str], *names: str) -> bool:
    """Does `args` set any of `names` (with or without `=`)?"""
    return any(arg == name or arg.startswith(name + "=") for arg in args for name in names)


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def python_module(argv: Sequence[str]) -> str | None:
    """`python -m MODULE …` → MODULE."""
    if not argv or "python" not in os.path.basename(argv[0]):
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if not arg.startswith("-"):
            return None
    return None


def script(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The program name and its arguments, looking through `python /path/script`."""
    if not argv:
        return "", []
    first = os.path.basename(argv[0])
    if "python" in first and len(argv) > 1 and not argv[1].startswith("-"):
        return os.path.basename(argv[1]), list(argv[2:])
    return first, list(argv[1:])


# -- finding programs ---------------------------------------------------------------------


def beside(program: str | None, names: Sequence[str]) -> str | None:
    """The first of `names` in `program`'s folder: as given, then with its links followed
    (a tool of the same build sits next to the real file, not next to a link to it)."""
    if not program:
        return None
    path = Path(program) if os.sep in program else Path(shutil.which(program) or program)
    folders = dict.fromkeys([path.parent, path.resolve().parent])
    for folder in folders:
        for name in names:
            candidate = folder / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def process_exe(pid: int | None, proc: Path = Path("/proc")) -> str | None:
    """The binary a running process was started from (`/proc/PID/exe`), if we may read it."""
    if pid is None:
        return None
    try:
        return os.readlink(proc / str(pid) / "exe")
    except OSError:
        return None


# -- the interface ------------------------------------------------------------------------


class EngineAdapter(ABC):
    """Everything sparktop knows about one engine; the defaults fit a generic OpenAI server."""

    name: ClassVar[str]
    default_port: ClassVar[int] = 0
    default_host: ClassVar[str] = "127.0.0.1"
    programs: ClassVar[tuple[str, ...]] = ()
    """Names of the engine's own program (what `classify` looks for in argv[0])."""
    children: ClassVar[tuple[str, ...]] = ()
    """Process-title prefixes of the engine's worker processes (never servers themselves)."""
    module: ClassVar[str | None] = None
    """The Python module that serves it (`python -m MODULE`), if there is one."""
    missing: ClassVar[str] = ""
    """The one line shown when its program cannot be found."""

    # polling
    metrics: ClassVar[MetricNames] = NO_METRICS
    health_path: ClassVar[str] = "/health"
    metrics_path: ClassVar[str] = "/metrics"
    metrics_imply_ready: ClassVar[bool] = False
    """A 200 from /metrics means the model is loaded, so one request a poll does for both."""

    # catalog
    takes_argv: ClassVar[bool] = False
    """The catalog gives the whole command (serve.argv) instead of engine arguments."""
    splits_over_rpc: ClassVar[bool] = False
    """The catalog may split its model over RPC workers (`rpc:`)."""
    configurable: ClassVar[bool] = True
    """config.yaml `engines:` may name the program that starts it."""

    # fit
    overhead_bytes: ClassVar[int] = 1 * GIB
    """Compute buffers and runtime on top of weights and KV cache."""
    context_flags: ClassVar[tuple[str, ...]] = ()
    """Engine arguments that set the context length."""
    cache_type_flags: ClassVar[tuple[tuple[str, ...], tuple[str, ...]]] = ((), ())
    """Engine arguments that set the K and the V cache's element type."""
    pool_fraction: ClassVar[tuple[str, float] | None] = None
    """(argument, default) of the fraction of the whole pool the engine claims at start."""

    # -- command lines --------------------------------------------------------------------

    @abstractmethod
    def classify(self, argv: Sequence[str]) -> Launch | None:
        """What `argv` says about a server of this engine; None: not this engine."""

    @abstractmethod
    def serve_argv(self, request: ServeRequest) -> list[str]:
        """The argv that serves `request.model` (no shell, no quoting)."""

    def serving_args(self, argv: Sequence[str]) -> list[str] | None:
        """The server's own arguments, after `python -m MODULE` or after `PROGRAM serve`;
        None: `argv` serves nothing of this engine's."""
        if self.module is not None and python_module(argv) == self.module:
            return list(argv[argv.index(self.module) + 1 :])
        program, args = script(argv)
        if program in self.programs and args[:1] == ["serve"]:
            return args[1:]
        return None

    def worker(self, argv: Sequence[str]) -> Launch | None:
        """A worker process of this engine, told by its process title."""
        if argv and self.children and argv[0].startswith(self.children):
            return Launch(engine=self.name, role=CHILD)
        return None

    def server(self, args: Sequence[str], *, model: str | None, served_name: str | None) -> Launch:
        """A server of this engine, from the arguments after its program."""
        return Launch(
            engine=self.name,
            role=SERVER,
            port=int_or_none(option(args, "--port")) or self.default_port,
            host=option(args, "--host") or self.default_host,
            served_name=served_name,
            model=model,
        )

    # -- its program and the tools that come with it --------------------------------------

    def locate(self) -> str | None:
        """The engine's program when config.yaml names none (PATH, a Python package …)."""
        return shutil.which(self.programs[0]) if self.programs else None

    def binary(self, configured: Configured) -> list[str]:
        """The argv prefix that starts the engine; raise EngineError when there is none."""
        if self.name in configured:
            return list(configured[self.name])
        found = self.locate()
        if found is None:
            raise EngineError(
                self.missing
                or f"{self.name} not found on PATH (or set engines: {{{self.name}: …}} in "
                "config.yaml)"
            )
        return [found]

    def configured_program(self, configured: Configured | None) -> str | None:
        """The program in config.yaml's argv prefix for this engine (its own name, else the
        first item)."""
        prefix = list((configured or {}).get(self.name) or ())
        named = [p for p in prefix if os.path.basename(p) in self.programs]
        return (named or prefix or [None])[0]

    def companion(
        self,
        names: Sequence[str],
        *,
        configured: Configured | None = None,
        pid: int | None = None,
        proc: Path = Path("/proc"),
    ) -> str | None:
        """A tool of the same build as the engine (e.g. llama-bench): beside the configured
        program, beside the running server's own binary (`/proc/PID/exe`), on PATH, then
        beside the program `locate` finds."""
        for program in (self.configured_program(configured), process_exe(pid, proc)):
            found = beside(program, names)
            if found:
                return found
        for name in names:
            found = shutil.which(name)
            if found:
                return found
        return beside(self.locate(), names)

    # -- the model it is given ------------------------------------------------------------

    def model_in(self, local_dir: Path, present: Callable[[], list[Path]]) -> Path | None:
        """What the engine is given when the catalog names no files (`present`: the entry's
        files on disk): by default the model directory itself."""
        return local_dir

    def model_argument(self, entry: ModelEntry, path: Path | None) -> str:
        """The model as the engine's argv names it: the local path when it is on disk, else
        the Hub repo. Raise EngineError when there is neither."""
        if path is not None and path.exists():
            return str(path)
        if not entry.repo:
            raise EngineError(f"model {entry.name}: neither local_dir on disk nor repo set")
        return entry.repo

    # -- will it fit ----------------------------------------------------------------------

    def context_of(self, args: Sequence[str], default: int | None) -> int | None:
        """The context length `args` ask for, else the catalog's `context`."""
        value = option(args, *self.context_flags) if self.context_flags else None
        return int(value) if value is not None and value.isdigit() else default

    def cache_types(self, args: Sequence[str], default: str) -> tuple[str, str]:
        """The K and V cache element types `args` ask for, else the catalog's `cache_type`."""
        k_flags, v_flags = self.cache_type_flags
        k = option(args, *k_flags) if k_flags else None
        v = option(args, *v_flags) if v_flags else None
        return k or default, v or default

    def kv_shape_file(self, model: Path | None) -> Path | None:
        """A file whose own metadata gives the model's shape (for the KV cache size)."""
        return None

    def kv_cache_told(self, args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str] | None:
        """(bytes, where it is said) of a KV cache the engine is told to allocate at start,
        whatever the context; None: the engine sizes it itself."""
        return None

    def preallocated_bytes(
        self, args: Sequence[str], pool_total_bytes: int, env: Mapping[str, str] | None = None
    ) -> int | None:
        """Memory the engine claims at start whatever the model needs (a pool fraction);
        None when its KV cache is told instead (`kv_cache_told`)."""
        if self.pool_fraction is None or self.kv_cache_told(args, env or {}) is not None:
            return None
        flag, default = self.pool_fraction
        return int(pool_total_bytes * float(option(args, flag) or default))

    # -- split serving --------------------------------------------------------------------

    def split_endpoints(self, argv: Sequence[str]) -> tuple[str, ...]:
        """The RPC workers a server's command line splits its model over."""
        return ()

    # -- polling a ready server -----------------------------------------------------------

    def context_from_server(self, conn: Connection, timeout: float) -> int | None:
        """The context length asked of the server itself when /v1/models does not say."""
        return None

    def extra_facts(
        self,
        conn: Connection,
        timeout: float,
        *,
        facts: Mapping[str, Any],
        memo: EngineMemo,
        now: float,
        metrics_supported: bool,
    ) -> dict[str, Any]:
        """Load facts the engine reports outside /metrics, laid over `facts` (this poll's)."""
        return {}
