"""The full-screen sparktop app. It renders Snapshots; all reading happens in the core,
on a worker thread, so a slow probe never freezes the screen."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from sparktop import __version__, logs
from sparktop.config import Config
from sparktop.probes.system import SystemProbe
from sparktop.servers.info import ServerInfo
from sparktop.snapshot import Snapshot
from sparktop.state import StateFile
from sparktop.ui.compositor import row_compositor_screen
from sparktop.ui.screens.help import HelpScreen
from sparktop.ui.themes import CONSOLE_THEME, DEFAULT_THEME, load_themes
from sparktop.ui.widgets.gpu_panel import GpuPanel
from sparktop.ui.widgets.memory_panel import MemoryPanel
from sparktop.ui.widgets.servers_panel import ServersTable
from sparktop.ui.widgets.summary_panel import MIN_COLUMNS, MIN_ROWS, SummaryPanel
from sparktop.units import fmt_uptime

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry
    from sparktop.control import Control
    from sparktop.servers.supervisor import ServeEvent

WIDE_AT = 140  # columns from which memory and GPUs sit side by side
HANGUP_GRACE_S = 2.0  # after SIGHUP, seconds for a clean shutdown before leaving regardless


class SparktopApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "sparktop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("m", "catalog", "Models"),
        Binding("x", "stop", "Stop"),
        Binding("t", "test", "Test"),
        Binding("l", "logs", "Logs"),
        Binding("e", "export", "Export"),
        Binding("b", "bench", "Bench"),
        Binding("c", "cycle_theme", "Theme"),
        Binding("w", "warnings", "Warnings"),
        Binding("r", "refresh_now", "Refresh"),
    ]

    def __init__(
        self,
        config: Config | None = None,
        probe: SystemProbe | None = None,
        *,
        interval: float | None = None,
        theme: str | None = None,
        themes: dict[str, Theme] | None = None,
        warnings: list[str] | None = None,
        ui_state: StateFile | None = None,
        control: Control | None = None,
        watch_servers: bool = True,
    ) -> None:
        super().__init__(driver_class=_quiet_driver())
        self.config = config or Config()
        self.interval = interval or self.config.interval
        self.probe = probe or SystemProbe(hint_rules=self.config.memory_hints)
        if themes is None:
            themes, theme_warnings = load_themes()
            warnings = [*(warnings or []), *theme_warnings]
        self.sparktop_themes = themes
        self.startup_warnings = list(warnings or [])
        self.ui_state = ui_state or StateFile("ui.json")
        self.requested_theme = theme
        self.last_snapshot: Snapshot | None = None
        self.refreshes = 0
        """Snapshots shown so far (the soak benchmark counts them)."""
        self.server_polls = 0
        """Server poll results shown so far (the soak benchmark counts them too)."""
        self.compact = False
        self.snapshot_ready = asyncio.Event()
        self._wake = threading.Event()
        self._stopping = False
        self._topbar_text = ""
        self._control = control
        self._control_lock = threading.Lock()
        self._downloads = None
        self._downloads_pending = False
        self.watch_servers = watch_servers
        self.servers: tuple[ServerInfo, ...] = ()
        self.servers_ready = asyncio.Event()
        self._servers_wake = threading.Event()
        self.busy: str | None = None
        """What a serve/stop in progress is doing (one at a time)."""
        self._health: dict[tuple[int | None, int | None], str] = {}
        self._gpu_problem: str | None = None
        self._download_rows: list | None = None
        self._servers_table: ServersTable | None = None
        self._servers_box: Vertical | None = None
        self._downloads_table = None
        self._downloads_box: Vertical | None = None

    @property
    def control(self) -> Control:
        """Catalog, monitor and supervisor; built on first use (after the first frame)."""
        with self._control_lock:
            if self._control is None:
                from sparktop.control import Control

                self._control = Control.from_config(self.config)
            return self._control

    @property
    def downloads(self):
        """The download manager (built on first use, off the first frame's path)."""
        with self._control_lock:
            if self._downloads is None:
                from sparktop.downloads.manager import DownloadManager

                self._downloads = DownloadManager(
                    on_change=self._downloads_changed, local_dirs=self._watched_dirs
                )
            return self._downloads

    def _watched_dirs(self) -> list:
        """Where downloads started elsewhere are looked for: the catalog's model dirs."""
        return [(e.local_dir, e.repo) for e in self.control.catalog if e.local_dir is not None]

    def _downloads_changed(self) -> None:
        """From download threads: one redraw queued at a time, always showing the latest."""
        if not self._downloads_pending:
            self._downloads_pending = True
            self._post(self._show_downloads)

    def _show_downloads(self) -> None:
        self._downloads_pending = False
        if self._downloads is None:
            return
        rows = self._downloads.rows()
        if rows == self._download_rows:
            return  # called at every servers poll: nothing to redraw most of the time
        self._download_rows = rows
        self._summary.downloads = rows
        if self._downloads_table is not None:
            self._downloads_table.show(rows)
            box = self._downloads_box
            box.display = bool(rows)
            running = sum(1 for r in rows if r.get("state") in ("downloading", "verifying"))
            title = f"Downloads ({running} running)" if running else "Downloads"
            if box.border_title != title:
                box.border_title = title

    def on_downloads_table_cancel_requested(self, message) -> None:
        if self.downloads.cancel(message.job_id):
            self.notify("cancelling: the partial files stay for resume", timeout=4)

    def start_download(self, entry: ModelEntry) -> None:
        """`d` on a catalog entry: ask the Hub what it is, confirm, then download."""
        if not entry.repo or entry.local_dir is None:
            self.notify(f"{entry.name} has no repo or local_dir in the catalog", severity="error")
            return
        self._plan_download(entry)

    @work(thread=True, group="download-plan")
    def _plan_download(self, entry: ModelEntry) -> None:
        from sparktop.downloads.hub import DownloadError

        self._post(self.notify, f"asking the Hub about {entry.repo} …", timeout=3)
        try:
            assert entry.repo is not None and entry.local_dir is not None
            plan = self.downloads.plan(entry.repo, tuple(entry.include), entry.local_dir)
        except DownloadError as exc:
            self._post(self.notify, str(exc), title="download", severity="error", timeout=10)
            return
        self._post(self._confirm_download, entry, plan)

    def _confirm_download(self, entry: ModelEntry, plan) -> None:
        from sparktop.ui.screens.dialogs import ConfirmScreen
        from sparktop.units import fmt_bytes

        problem = plan.space_problem()
        if problem:
            self.notify(
                problem,
                title=f"download {entry.name}",
                severity="error",
                timeout=12,
            )
            return
        lines = [
            f"Download {plan.repo} ({len(plan.files)} files, {fmt_bytes(plan.total_bytes)})",
            f"into {plan.local_dir}?",
            "",
        ]
        lines += [f"  {fmt_bytes(f.size):>10}  {f.path}" for f in plan.files[:12]]
        if len(plan.files) > 12:
            lines.append(f"  … and {len(plan.files) - 12} more")
        if plan.present_bytes:
            lines.append(f"{fmt_bytes(plan.present_bytes)} already here: resuming.")
        lines.append(f"{fmt_bytes(plan.free_bytes)} free on that disk.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.downloads.start(plan, tuple(entry.include))
                self._show_downloads()

        self.push_screen(ConfirmScreen(f"download {entry.name}", "\n".join(lines)), answered)

    # -- layout -------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return row_compositor_screen(id="_default")

    def compose(self) -> ComposeResult:
        yield Static(f"sparktop {__version__}", id="topbar")
        with Container(id="system"):
            yield MemoryPanel(id="memory")
            with VerticalScroll(id="gpus") as gpus:
                gpus.border_title = "GPUs"
                yield GpuPanel(id="gpu-panel")
        yield SummaryPanel(id="summary")
        yield Footer()

    def _mount_servers_box(self) -> AwaitComplete:
        """The servers table joins after the first frame: it is the costliest widget to style
        and lay out, and memory and GPUs are what a fresh start should show first."""
        table = ServersTable(id="servers")
        box = Vertical(
            table,
            Static("", id="serve-progress", markup=False),
            id="servers-box",
        )
        box.border_title = "Servers"
        from sparktop.ui.widgets.downloads_panel import DownloadsTable

        self._servers_table = table
        self._servers_box = box
        self._downloads_table = DownloadsTable(id="downloads")
        downloads = Vertical(self._downloads_table, id="downloads-box")
        downloads.border_title = "Downloads"
        downloads.display = False  # shown once there is something to show
        self._downloads_box = downloads
        return AwaitComplete(
            self.mount(box, before=self.query_one(Footer)),
            self.mount(downloads, before=self.query_one(Footer)),
        )

    def on_mount(self) -> None:
        self._ui_loop = asyncio.get_running_loop()
        # the widgets redrawn every tick, looked up once (a DOM query per tick adds up)
        self._memory = self.query_one(MemoryPanel)
        self._gpu_panel = self.query_one(GpuPanel)
        self._summary = self.query_one(SummaryPanel)
        self._gpus_box = self.query_one("#gpus", VerticalScroll)
        self._topbar = self.query_one("#topbar", Static)
        self._ui_context = contextvars.copy_context()  # callbacks see the active app
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # SSH dropped or the tmux pane killed: leave quietly; served models keep running
            # (they live in their own sessions) and are adopted again on the next start.
            self._ui_loop.add_signal_handler(signal.SIGHUP, self._hang_up)
        for theme in self.sparktop_themes.values():
            self.register_theme(theme)
        self.theme = self._initial_theme()
        self._start_theme: str | None = self.theme  # chosen for this run, not by the user
        self._match_no_color_filter()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self._memory.interval = self.interval
        if self.ui_state.problem:
            self.startup_warnings.append(self.ui_state.problem)
        if logs.problem():
            self.startup_warnings.append(str(logs.problem()))
        for warning in self.startup_warnings:
            self.notify(warning, title="warning", severity="warning", timeout=12)
        logs.LOGGER.info(
            "view started: %sx%s, TERM=%s%s, every %g s",
            self.size.width,
            self.size.height,
            os.environ.get("TERM", "?"),
            ", NO_COLOR" if os.environ.get("NO_COLOR") else "",
            self.interval,
        )
        self._show_memory_now()
        self._probe_loop()

    def notify(self, message: str, *, title: str = "", severity: str = "information",
               **kwargs) -> None:  # fmt: skip
        """Every notification also goes to the log (warnings and errors to the `w` list)."""
        level = {"warning": logging.WARNING, "error": logging.ERROR}.get(severity, logging.INFO)
        logs.LOGGER.log(level, "%s%s", f"{title}: " if title else "", message)
        super().notify(message, title=title, severity=severity, **kwargs)  # type: ignore[arg-type]

    def _handle_exception(self, error: Exception) -> None:
        logs.LOGGER.error("unexpected error", exc_info=error)
        super()._handle_exception(error)

    def _hang_up(self) -> None:
        logs.LOGGER.info("SIGHUP: leaving; served models keep running")
        self._stopping = True
        self._wake.set()
        self._servers_wake.set()
        # When the terminal itself is gone (SSH dropped, pane killed), Textual's shutdown
        # writes its goodbye sequences to a closed pty: its writer thread dies on EIO and
        # the shutdown then waits on a full queue forever. Leave anyway, shortly after.
        # Nothing is lost: state files are written as they change, and partial downloads
        # are resumed by the next start.
        watchdog = threading.Timer(HANGUP_GRACE_S, os._exit, (0,))
        watchdog.daemon = True
        watchdog.start()
        self.exit(0)

    def _show_memory_now(self) -> None:
        """The first frame already shows memory: /proc/meminfo is read here, on the UI thread,
        because procfs answers at once; NVML and sysfs wait for the worker (they can hang)."""
        snapshot = self.probe.memory_only()
        if snapshot.memory is not None:
            self._memory.show(snapshot, record=False)  # history: the worker's

    def _initial_theme(self) -> str:
        saved = self.ui_state.load().get("theme")
        for name in (self.requested_theme, saved, self.config.theme):
            if not name:
                continue
            if name in self.available_themes:
                return name
            self.startup_warnings.append(f"theme {name!r} not found; using {DEFAULT_THEME}")
            break
        # The Linux console (Talos, a KVM screen) has 16 colours: start with the theme made
        # for it unless the user chose another.
        default = CONSOLE_THEME if os.environ.get("TERM") == "linux" else DEFAULT_THEME
        return default if default in self.available_themes else "textual-dark"

    def _match_no_color_filter(self) -> None:
        """NO_COLOR: Textual picks its colour-removing filter once, for the theme at start-up
        (greys for RGB themes). A 16-colour theme needs the terminal's default colours
        instead: greyed ANSI colours come out black on black."""
        from textual.filter import Monochrome, NoColor

        if not self.no_color:
            return
        wanted = NoColor if self.native_ansi_color else Monochrome
        for index, current in enumerate(self._filters):
            if isinstance(current, (NoColor, Monochrome)) and type(current) is not wanted:
                self._filters[index] = wanted()

    def _remember_theme(self, theme: Theme) -> None:
        self._match_no_color_filter()
        if theme.name == self._start_theme:
            # the start-up theme (--theme, TERM=linux's default) is announced once too:
            # only a theme the user switches to is remembered
            self._start_theme = None
            return
        self._start_theme = None
        if self.ui_state.load().get("theme") != theme.name and not self.ui_state.update(
            theme=theme.name
        ):
            self.notify(self.ui_state.problem or "cannot save theme", severity="warning")

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE_AT
        # too small a window for the panels: the one-line-per-fact summary shows instead
        self.compact = event.size.width < MIN_COLUMNS or event.size.height < MIN_ROWS
        self.screen.set_class(wide, "wide")
        self.screen.set_class(self.compact, "compact")
        self.query_one(MemoryPanel).fill = wide  # resize can come before on_mount
        if self.last_snapshot is not None:
            self._show_topbar(self.last_snapshot)

    # -- data ---------------------------------------------------------------------------

    def _post(self, callback, *args, **kwargs) -> bool:
        """Run `callback(*args)` on the UI loop from a worker thread, without waiting.

        Cheaper than `call_from_thread` (which inspects the callback's signature and blocks
        for the result on every call): this runs once a second for as long as the pane lives.
        False when the app is shutting down.
        """

        def guarded() -> None:
            try:
                callback(*args, **kwargs)
            except Exception as exc:
                self._handle_exception(exc)

        try:
            self._ui_loop.call_soon_threadsafe(guarded, context=self._ui_context)
        except RuntimeError:  # loop closed: the app is shutting down
            return False
        return True

    @work(thread=True, exclusive=True, name="probe", group="probe")
    def _probe_loop(self) -> None:
        """Collect a Snapshot every interval on this worker thread; hand it to the UI."""
        worker = get_current_worker()
        while not worker.is_cancelled and not self._stopping:
            started = time.monotonic()
            snapshot = self.probe.collect()
            if not self._post(self._show, snapshot):
                return
            spent = time.monotonic() - started
            self._wake.wait(max(0.0, self.interval - spent))
            self._wake.clear()

    @work(thread=True, exclusive=True, name="servers", group="servers")
    def _servers_loop(self) -> None:
        """Discover and poll servers at their own, slower cadence (config servers.interval)."""
        worker = get_current_worker()
        # the catalog is read here, off the UI thread and after the first frame
        for problem in self.control.catalog.errors:
            self.call_from_thread(
                self.notify, problem, title="catalog", severity="warning", timeout=12
            )
        for problem in self.downloads.resume_interrupted():
            self._post(self.notify, problem, title="download", severity="warning", timeout=12)
        while not worker.is_cancelled and not self._stopping:
            started = time.monotonic()
            self.downloads.scan_external()
            self._post(self._show_downloads)
            snapshot = self.last_snapshot
            gpu_by_pid = {}
            if snapshot is not None:
                gpu_by_pid = {p.pid: p.used_bytes or 0 for g in snapshot.gpus for p in g.processes}
            try:
                servers = self.control.poll(gpu_by_pid)
            except Exception as exc:  # never let a poll bug kill the loop
                if self._stopping:
                    return  # the monitor was closed under us: leaving anyway
                servers = self.servers
                self._post(self.notify, f"server poll failed: {exc}", severity="error")
            if not self._post(self._show_servers, servers):
                return
            spent = time.monotonic() - started
            settings = self.control.config.servers
            every = settings.idle_interval if self._all_idle(servers) else settings.interval
            self._servers_wake.wait(max(0.0, every - spent))
            self._servers_wake.clear()

    def _all_idle(self, servers: tuple[ServerInfo, ...]) -> bool:
        """Nothing to watch closely: every server ready with nothing running and no tokens
        flowing, no serve/stop under way, no download elsewhere growing."""
        if self.busy or any(d.active for d in self.downloads.external):
            return False
        return all(
            s.health == "ready" and not s.running and not s.waiting
            and not s.prompt_tps and not s.gen_tps
            for s in servers
        )  # fmt: skip

    def _log_health(self, servers: tuple[ServerInfo, ...]) -> None:
        """A server's health changing (ready → not responding, crashed, gone) is logged."""
        seen: dict[tuple[int | None, int | None], str] = {}
        for server in servers:
            key = (server.pid, server.port)
            seen[key] = server.health
            before = self._health.get(key)
            if before == server.health:
                continue
            bad = server.health in ("not responding", "crashed", "error")
            logs.LOGGER.log(
                logging.WARNING if bad else logging.INFO,
                "server %s (pid %s, port %s): %s%s%s",
                server.name,
                server.pid,
                server.port,
                f"{before} → " if before else "",
                server.health,
                f" ({server.health_detail})" if server.health_detail else "",
            )
        for key in self._health.keys() - seen.keys():
            logs.LOGGER.info("server pid %s port %s: gone", *key)
        self._health = seen

    def _show_servers(self, servers: tuple[ServerInfo, ...]) -> None:
        self.server_polls += 1
        self._log_health(servers)
        appeared_or_gone = bool(servers) != bool(self.servers)
        self.servers = servers
        if appeared_or_gone:
            self.refresh_bindings()  # server keys show in the footer only when they can act
        # mounted before the servers loop starts (_after_first_frame awaits it)
        assert self._servers_table is not None and self._servers_box is not None
        self._servers_table.show(servers)
        summary = self._summary
        summary.servers = servers
        if self.compact and summary.snapshot is not None:
            summary.redraw()
        box = self._servers_box
        title = f"Servers ({len(servers)})" if servers else "Servers (none running: m for models)"
        if box.border_title != title:
            box.border_title = title
        self.servers_ready.set()

    async def _after_first_frame(self) -> None:
        """Servers and downloads join once memory and GPUs are on screen."""
        await self._mount_servers_box()  # before the first poll result can arrive
        if self.watch_servers:
            self._servers_loop()

    def _show(self, snapshot: Snapshot) -> None:
        if self.last_snapshot is None:
            self.call_after_refresh(self._after_first_frame)
        self.last_snapshot = snapshot
        self.refreshes += 1
        gpu_problem = snapshot.gpu_unavailable_reason or "; ".join(
            f"GPU {g.index}: {g.error}" for g in snapshot.gpus if g.error
        )
        if gpu_problem != self._gpu_problem:
            if gpu_problem:  # a warning when it changes mid-run (GPU lost), not at start
                level = logging.INFO if self._gpu_problem is None else logging.WARNING
                logs.LOGGER.log(level, "GPU: %s", gpu_problem)
            elif self._gpu_problem:
                logs.LOGGER.info("GPU: answering again")
            self._gpu_problem = gpu_problem
        self._memory.show(snapshot)
        self._gpu_panel.show(snapshot)
        if self.compact:
            self._summary.show(snapshot)
        else:
            self._summary.snapshot = snapshot
        gpus = self._gpus_box
        title = f"GPUs ({len(snapshot.gpus)})" if snapshot.gpus else "GPUs"
        if gpus.border_title != title:
            gpus.border_title = title
        self._show_topbar(snapshot)
        self.snapshot_ready.set()

    def _show_topbar(self, snapshot: Snapshot) -> None:
        warned = len(logs.recent())
        warnings = f"{warned} warning{'s' if warned != 1 else ''} (w) │ " if warned else ""
        up = f"up {fmt_uptime(snapshot.uptime_s)}"
        if self.compact:
            topbar = f"{snapshot.hostname} │ {up} │ {warnings}? help"
        else:
            topbar = (
                f"sparktop {__version__} │ {snapshot.hostname} │ {up} │ "
                f"every {self.interval:g} s │ {warnings}? help"
            )
        if topbar != self._topbar_text:
            self._topbar_text = topbar
            self._topbar.update(topbar)

    # -- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        """Help lists sparktop's own keys first, then scrolling/focus keys of the view."""
        own = [b for b in self.BINDINGS if isinstance(b, Binding)]
        own_keys = {b.key for b in own}
        ours = [(self.get_key_display(b), b.description) for b in own]
        general: list[tuple[str, str]] = []
        for key, active in self.active_bindings.items():
            binding = active.binding
            if key in own_keys or binding.key in own_keys:
                continue
            description = binding.description or binding.action.replace("_", " ")
            general.append((self.get_key_display(binding), description))
        ours.append(("ctrl+p", "Command palette (switch theme, run any key's action)"))
        intro = (
            "Memory is read from /proc/meminfo. On unified-memory machines (DGX Spark, "
            "Strix Halo) the GPU allocates from the same pool, so the bar splits it into "
            "GPU processes, other processes, page cache and free."
        )
        self.push_screen(HelpScreen([("sparktop", ours), ("Scrolling and focus", general)], intro))

    # -- servers --------------------------------------------------------------------------

    SERVER_ACTIONS = frozenset({"stop", "test", "logs", "export", "bench"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Server keys appear in the footer once there is a server to act on."""
        return action not in self.SERVER_ACTIONS or bool(self.servers)

    def _selected_server(self) -> ServerInfo | None:
        tables = self.query(ServersTable)
        server = tables.first().selected if tables else None
        if server is None:
            self.notify("no server selected (none running? press m for models)", timeout=4)
        return server

    def _progress(self, text: str) -> None:
        for line in self.query("#serve-progress").results(Static):
            line.update(text)

    def action_catalog(self) -> None:
        from sparktop.ui.screens.catalog import CatalogScreen

        self.push_screen(CatalogScreen())

    def start_serve(self, entry: ModelEntry) -> None:
        """`s` on a catalog entry: plan, confirm what must be confirmed, then serve."""
        if self.busy:
            self.notify(f"busy: {self.busy}", severity="warning")
            return
        self._plan_serve(entry)

    @work(thread=True, group="serve")
    def _plan_serve(self, entry: ModelEntry) -> None:
        try:
            plan = self.control.supervisor.plan(entry, self.servers, self.control.catalog.entries)
        except Exception as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self._confirm_serve, plan)

    def _confirm_serve(self, plan) -> None:
        entry = plan.entry
        if plan.already_running is not None:
            self.notify(f"{entry.name} is already running", timeout=4)
            return
        if plan.port_blocker:
            self.notify(plan.port_blocker, title=f"cannot serve {entry.name}", severity="error")
            return
        if not plan.needs_confirmation:
            self._run_serve(plan, force=False)
            return
        lines = [f"Serve {entry.name} ({entry.engine}) on port {entry.serve.port}?", ""]
        lines.append(f"Memory: {plan.fit.summary()}")
        for server in plan.conflicts:
            lines.append(f"Stops first: {server.name} (pid {server.pid}, port {server.port})")
        if plan.fit.verdict == "does not fit":
            lines.append("It does not fit: serving anyway may OOM the whole box.")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_serve(plan, force=True)

        from sparktop.ui.screens.dialogs import ConfirmScreen

        self.push_screen(ConfirmScreen(f"serve {entry.name}", "\n".join(lines)), answered)

    @work(thread=True, group="serve")
    def _run_serve(self, plan, force: bool) -> None:
        from sparktop.servers.supervisor import ServeError
        from sparktop.ui.screens.dialogs import TextScreen

        entry = plan.entry
        self.busy = f"serving {entry.name}"

        def progress(event: ServeEvent) -> None:
            tail = ("\n  " + event.log_tail[-1][:120]) if event.log_tail else ""
            text = f"{entry.name}: {event.stage} — {event.message} [{event.elapsed_s:.0f} s]{tail}"
            self.call_from_thread(self._progress, text)
            self._servers_wake.set()

        try:
            self.control.supervisor.serve(plan, force=force, progress=progress)
        except ServeError as exc:
            self.call_from_thread(self._progress, "")
            text = str(exc) + ("\n\n" + "\n".join(exc.log_tail) if exc.log_tail else "")
            self.call_from_thread(self.push_screen, TextScreen(f"serve {entry.name} failed", text))
        else:
            self.call_from_thread(self._progress, "")
            self.call_from_thread(self.notify, f"{entry.serve.served_name} is ready", timeout=5)
        finally:
            self.busy = None
            self._servers_wake.set()

    def action_stop(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        if self.busy:
            self.notify(f"busy: {self.busy}", severity="warning")
            return
        if server.managed and server.health != "crashed":
            self._run_stop(server)
            return
        if server.health == "crashed":
            question = f"Forget the crashed server {server.name}?"
        else:
            question = (
                f"{server.name} (pid {server.pid}, port {server.port}) was not started by "
                "sparktop. Stop it (SIGTERM, then SIGKILL)?"
            )

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_stop(server)

        from sparktop.ui.screens.dialogs import ConfirmScreen

        self.push_screen(ConfirmScreen(f"stop {server.name}", question), answered)

    @work(thread=True, group="serve")
    def _run_stop(self, server: ServerInfo) -> None:
        from sparktop.servers.supervisor import ServeError

        self.busy = f"stopping {server.name}"
        self.call_from_thread(self._progress, f"stopping {server.name} (pid {server.pid})…")
        try:
            result = self.control.supervisor.stop(server)
        except ServeError as exc:
            self.call_from_thread(self.notify, str(exc), timeout=5)
        else:
            port = "port free" if result.port_freed else "PORT STILL IN USE"
            self.call_from_thread(
                self.notify, f"stopped {server.name} in {result.elapsed_s:.1f} s: {port}"
            )
        finally:
            self.busy = None
            self.call_from_thread(self._progress, "")
            self._servers_wake.set()

    def action_test(self) -> None:
        server = self._selected_server()
        if server is not None and server.url:
            self._progress(f"testing {server.name}…")
            self._run_test(server)

    @work(thread=True, group="test")
    def _run_test(self, server: ServerInfo) -> None:
        import os

        from sparktop.servers.smoke import run_smoke
        from sparktop.ui.screens.dialogs import TextScreen

        entry = self.control.catalog.get(server.catalog_name or "")
        token = None
        if entry and entry.serve.proxy and entry.serve.proxy.token_env:
            token = os.environ.get(entry.serve.proxy.token_env)
        assert server.url is not None
        result = run_smoke(server.url, server.name, token=token)
        lines = [f"{server.name} at {server.url}", ""]
        for check in result.checks:
            latency = f"{check.latency_s * 1000:.0f} ms" if check.latency_s is not None else ""
            lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name:22} {latency:>9}  "
                         f"{check.detail}")  # fmt: skip
        if result.coherence is not None:
            mark = "PASS" if result.coherence.ok else "FAIL"
            lines.append(f"{mark}  {'coherence':22} {'':>9}  {result.coherence.summary()}")
        lines += ["", "reply:", result.reply.strip()]
        self.call_from_thread(self._progress, "")
        self.call_from_thread(self.push_screen, TextScreen(f"test {server.name}", "\n".join(lines)))

    def action_logs(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        if not server.log_path:
            self.notify(f"{server.name} was not started by sparktop: no log here", timeout=4)
            return
        from sparktop.servers.registry import tail
        from sparktop.ui.screens.dialogs import TextScreen

        path = server.log_path

        def read() -> str:
            return "\n".join(tail(path, 200, max_bytes=256 * 1024))

        self.push_screen(TextScreen(f"log {path}", read(), refresh=read))

    def action_bench(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        if server.health != "ready" or server.url is None:
            self.notify(f"{server.name} is not ready ({server.health})", timeout=4)
            return
        from sparktop.ui.screens.bench import BenchScreen

        self.push_screen(BenchScreen(server))

    def action_export(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        entry = self.control.catalog.get(server.catalog_name or "")
        if entry is None:
            self.notify(f"{server.name} is not in the catalog", timeout=4)
            return
        self.show_export(entry)

    def show_export(self, entry: ModelEntry) -> None:
        import json

        from sparktop.servers.export import opencode_entry
        from sparktop.ui.screens.dialogs import TextScreen

        text = json.dumps(opencode_entry(entry), indent=2)
        self.push_screen(TextScreen(f"OpenCode provider for {entry.name}", text))

    def action_warnings(self) -> None:
        """Recent warnings and errors of this run, and where the full log is."""
        from sparktop.ui.screens.dialogs import TextScreen

        def text() -> str:
            entries = logs.recent()
            where = logs.path()
            lines = [f"log: {where}" if where else f"log: none ({logs.problem()})"]
            if logs.problem() and where:
                lines.append(str(logs.problem()))
            lines.append("")
            lines += [e.line() for e in entries] or ["no warnings since sparktop started"]
            return "\n".join(lines)

        self.push_screen(TextScreen(f"warnings ({len(logs.recent())})", text(), refresh=text))

    def action_cycle_theme(self) -> None:
        names = sorted(self.sparktop_themes) or sorted(self.available_themes)
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_refresh_now(self) -> None:
        self._wake.set()
        self._servers_wake.set()

    async def action_quit(self) -> None:
        self._stopping = True
        self._wake.set()
        self._servers_wake.set()
        self.exit(0)

    def on_unmount(self) -> None:
        self._stopping = True
        self._wake.set()
        self._servers_wake.set()
        self.probe.close()
        if self._control is not None:
            self._control.close()


def _quiet_driver():
    """The Linux driver whose input thread sleeps while nothing is typed (see driver.py);
    Textual's own elsewhere."""
    import sys

    if sys.platform != "linux":
        return None
    from sparktop.ui.driver import QuietLinuxDriver

    return QuietLinuxDriver


def run_app(config: Config, interval: float | None = None, theme: str | None = None) -> int:
    """Entry point used by the CLI; returns the process exit code."""
    themes, warnings = load_themes()
    app = SparktopApp(config, interval=interval, theme=theme, themes=themes, warnings=warnings)
    return app.run() or 0


__all__ = ["SparktopApp", "run_app"]
