"""The main view: memory, GPUs, servers and downloads, and the flows that act on them.

Two workers feed it: the probe (memory, GPUs, hints every refresh) and the servers worker
(discovery + polls at their own cadence, downloads started elsewhere). Both read the box
through the one `SnapshotProducer` and hand results over as Messages. Every key's work is
done by the action layer (`sparktop.actions`) on a worker thread; this screen asks what
must be asked and shows what comes back.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from sparktop import __version__, logs
from sparktop.actions import ActionError, Event
from sparktop.downloads.states import ACTIVE
from sparktop.probes.disk import disk_line, low_space
from sparktop.servers.info import CRASHED, ERROR, NOT_RESPONDING, READY, ServerInfo
from sparktop.ui import messages as msg
from sparktop.ui.compositor import RowCompositor, supported
from sparktop.ui.layout import Needs, plan
from sparktop.ui.widgets.gpu_panel import GpuPanel
from sparktop.ui.widgets.memory_panel import MemoryPanel
from sparktop.ui.widgets.panel import SnapshotPanel
from sparktop.ui.widgets.servers_panel import ServersTable
from sparktop.ui.widgets.summary_panel import SummaryPanel
from sparktop.units import fmt_uptime

if TYPE_CHECKING:
    from types import ModuleType

    from textual.widget import Widget

    from sparktop.actions.downloads import Downloads
    from sparktop.actions.servers import StopPlan
    from sparktop.catalog.entry import ModelEntry
    from sparktop.catalog_watch import CatalogWatch
    from sparktop.collect import SnapshotProducer
    from sparktop.control import Control
    from sparktop.servers.supervisor import ServePlan
    from sparktop.snapshot import DiskInfo, Snapshot
    from sparktop.ui.screens.server_detail import ServerHistories


def _actions() -> ModuleType:
    """sparktop.actions.servers, imported on first use: it loads the supervisor, the monitor
    and the catalog, none of which the first frame needs."""
    from sparktop.actions import servers

    return servers


SERVER_ACTIONS = frozenset({"stop", "test", "logs", "export", "bench"})
BAD_HEALTH = (NOT_RESPONDING, CRASHED, ERROR)


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # the App's keys people look for first, repeated here so the footer starts with them
        Binding("q", "app.quit", "Quit"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("m", "models", "Models"),
        # the server keys act on the selected row of the servers table (see check_action)
        Binding("x", "stop", "Stop"),
        Binding("t", "test", "Test"),
        Binding("l", "logs", "Logs"),
        Binding("e", "export", "Export"),
        Binding("b", "bench", "Bench"),
        Binding("f", "hosts", "Hosts"),
        Binding("r", "refresh", "Refresh"),
    ]
    AUTO_FOCUS = "#servers"
    """The servers table takes the keys (↑/↓ move its cursor) once it is mounted."""

    def __init__(self, producer: SnapshotProducer, *, interval: float, watch_servers: bool,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        if supported():  # repaint only the rows that changed (see compositor.py)
            self._compositor = RowCompositor()
        self.producer = producer
        self.interval = interval
        self.watch_servers = watch_servers
        self.last_snapshot: Snapshot | None = None
        self.refreshes = 0
        """Snapshots shown so far (the soak benchmark counts them)."""
        self.server_polls = 0
        """Server poll results shown so far (the soak benchmark counts them too)."""
        self.servers: tuple[ServerInfo, ...] = ()
        self.busy: str | None = None
        """What a serve/stop in progress is doing (one at a time)."""
        self.bench_lengths = (512, 128, 3)
        """Prompt tokens, generated tokens and repetitions of `b`."""
        self.compact = False
        self.wide = False
        self.height = 24
        """Rows of the window (the App's resize says)."""
        self._needs: Needs | None = None
        self._focus_before_compact: Widget | None = None
        """What had the keys when the window shrank to the summary."""
        self.stopping = False
        self._wake = threading.Event()
        self._downloads: Downloads | None = None
        self._downloads_lock = threading.Lock()
        self._download_rows: list | None = None
        self._health: dict[tuple[int | None, int | None], str] = {}
        self._gpu_problem: str | None = None
        self._catalog_watch: CatalogWatch | None = None
        self.catalog_problems: tuple[str, ...] = ()
        """Problems of a catalog edit that was not used (the Models screen shows them)."""
        self._topbar_text = ""
        self.disks: tuple[DiskInfo, ...] = ()
        """The model folders' filesystems, read by the servers loop at its cadence."""
        self._disks_warned: set[str] = set()
        self.server_histories: ServerHistories | None = None
        """Each server's recent tok/s, KV and CPU (built at the first poll)."""
        self._servers_table: ServersTable | None = None
        self._servers_box: Vertical | None = None
        self._downloads_table: Any = None
        self._downloads_box: Vertical | None = None
        producer.download_rows = lambda: self.downloads.rows()

    @property
    def control(self) -> Control:
        return self.producer.control

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(f"sparktop {__version__}", id="topbar")
        with Container(id="system"):
            yield MemoryPanel(id="memory")
            with VerticalScroll(id="gpus") as gpus:
                gpus.border_title = "GPUs"
                yield GpuPanel(id="gpu-panel")
        yield SummaryPanel(id="summary")
        yield Footer()

    def on_mount(self) -> None:
        # the widgets redrawn every tick, looked up once (a DOM query per tick adds up)
        self._memory = self.query_one(MemoryPanel)
        self._gpu_panel = self.query_one(GpuPanel)
        self._summary = self.query_one(SummaryPanel)
        self._gpus_box = self.query_one("#gpus", VerticalScroll)
        self._topbar = self.query_one("#topbar", Static)
        self._memory.interval = self.interval
        self._show_memory_now()
        self._probe_loop()

    def _show_memory_now(self) -> None:
        """The first frame already shows memory: /proc/meminfo is read here, on the UI thread,
        because procfs answers at once; NVML and sysfs wait for the worker (they can hang)."""
        snapshot = self.producer.memory_only()
        if snapshot.memory is not None:
            self._memory.show(snapshot, record=False)  # history: the worker's

    def _mount_servers_box(self) -> AwaitComplete:
        """The servers table joins after the first frame: it is the costliest widget to style
        and lay out, and memory and GPUs are what a fresh start should show first."""
        from sparktop.ui.widgets.downloads_panel import DownloadsTable

        table = ServersTable(id="servers")
        box = Vertical(table, Static("", id="serve-progress", markup=False), id="servers-box")
        box.border_title = "Servers"
        self._servers_table, self._servers_box = table, box
        self._downloads_table = DownloadsTable(id="downloads")
        downloads = Vertical(self._downloads_table, id="downloads-box")
        downloads.border_title = "Downloads"
        downloads.display = False  # shown once there is something to show
        self._downloads_box = downloads
        footer = self.query_one(Footer)
        return AwaitComplete(self.mount(box, before=footer), self.mount(downloads, before=footer))

    def apply_size(self, *, wide: bool, compact: bool, height: int | None = None) -> None:
        """The App's resize: side-by-side panels when wide, the summary when too small."""
        if compact and not self.compact:  # the tables hide, and Textual drops their focus
            self._focus_before_compact = self.focused
        elif self.compact and not compact:  # back: the keys go where they went before
            self.call_after_refresh(self._restore_focus)
        self.compact = compact
        self.set_class(wide, "wide")
        self.set_class(compact, "compact")
        self.wide = wide
        if height is not None:
            self.height = height
        self.refresh_bindings()  # server keys act only while the servers table shows
        self._share_rows()
        if self.last_snapshot is not None:
            self._show_topbar(self.last_snapshot)

    def _restore_focus(self) -> None:
        """After the summary, the widget that had the keys gets them again (the servers
        table when that one is gone), unless something else took them meanwhile."""
        if self.compact or self.focused is not None:
            return
        before, self._focus_before_compact = self._focus_before_compact, None
        for widget in (before, self._servers_table):
            if widget is not None and widget.is_attached and widget.focusable:
                widget.focus()
                return

    @on(SnapshotPanel.RowsChanged)
    def _share_rows(self) -> None:
        """Panels get the rows their text needs, the servers (and downloads) the rest, the
        memory chart what is left over (ui/layout.py). Worked out again only when a count
        it depends on changes: a resize, servers or downloads coming or going, a hint."""
        if self.compact or not hasattr(self, "_memory"):  # the summary, or not mounted yet
            return
        downloads = 0
        if self._downloads_box is not None and self._downloads_box.display:
            downloads = self._downloads_table.row_count
        needs = Needs(height=self.height, wide=self.wide, memory=self._memory.rows,
                      gpus=self._gpu_panel.rows, servers=len(self.servers),
                      downloads=downloads)  # fmt: skip
        if needs == self._needs:
            return
        self._needs = needs
        shares = plan(needs)
        self.query_one("#system").styles.height = shares.system
        self._memory.styles.height = shares.memory
        self._gpus_box.styles.height = shares.gpus
        if self._memory.chart_rows != shares.chart:
            self._memory.chart_rows = shares.chart
            if self._memory.snapshot is not None:
                self._memory.redraw()

    # -- feeds (worker threads) -------------------------------------------------------------

    def wake(self) -> None:
        """Read everything again now (`r`, an action ended)."""
        self._wake.set()
        self.producer.wake_servers()

    def leave(self) -> None:
        """The app is going: the workers end at their next wake-up."""
        self.stopping = True
        self.wake()

    @work(thread=True, exclusive=True, name="probe", group="probe")
    def _probe_loop(self) -> None:
        """Collect a Snapshot every interval on this worker thread; hand it to the UI."""
        worker = get_current_worker()
        while not worker.is_cancelled and not self.stopping:
            started = time.monotonic()
            self.post_message(msg.SnapshotTaken(self.producer.probe()))
            self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
            self._wake.clear()

    @work(thread=True, exclusive=True, name="servers", group="servers")
    def _servers_loop(self) -> None:
        """Discover and poll servers at their own, slower cadence (config servers.interval)."""
        worker = get_current_worker()
        # the catalog is read here, off the UI thread and after the first frame; its files
        # are watched from before that read on, and checked at this loop's cadence (a stat
        # per file each second was the costliest part of the 1 s refresh, py-spy)
        from sparktop.catalog_watch import CatalogWatch

        self._catalog_watch = CatalogWatch()
        for problem in self.control.catalog.errors:
            self.post_message(msg.Notice(problem, title="catalog", severity="warning",
                                         timeout=12))  # fmt: skip
        for problem in self.downloads.resume_interrupted():
            self.post_message(msg.Notice(problem, title="download", severity="warning",
                                         timeout=12))  # fmt: skip
        while not worker.is_cancelled and not self.stopping:
            started = time.monotonic()
            self._check_catalog()
            self.downloads.scan_external()
            self.post_message(msg.DownloadsChanged())
            try:
                servers = self.producer.poll_servers()
            except Exception as exc:  # never let a poll bug kill the loop
                if self.stopping:
                    return  # the monitor was closed under us: leaving anyway
                servers = self.servers
                self.post_message(msg.Notice(f"server poll failed: {exc}", severity="error"))
            servers, idle_stop_s = self._watch_idle(servers)
            self.disks = self.producer.read_disks(self.downloads.rows())
            self.post_message(msg.ServersPolled(servers))
            settings = self.control.config.servers
            every = settings.idle_interval if self._all_idle(servers) else settings.interval
            wait = every - (time.monotonic() - started)
            if idle_stop_s is not None:  # an idle stop falls due before then: look at once
                wait = min(wait, idle_stop_s + 0.1)
            # ends early on wake() or when a server process exits (a stop from outside)
            self.producer.wait_for_servers(max(0.0, wait))

    def _watch_idle(
        self, servers: tuple[ServerInfo, ...]
    ) -> tuple[tuple[ServerInfo, ...], float | None]:
        """Each poll notes the servers' activity (a serve that must make room stops the
        least recently used) and does the idle stops due (`idle_stop_after`), each said in
        a notice: the servers left, and the seconds until the next idle stop."""
        try:
            watch = _actions().watch_idle(self.control, servers, stop_due=self.busy is None)
        except Exception as exc:  # never let it kill the loop
            logs.LOGGER.error("idle check failed", exc_info=exc)
            return servers, None
        for line in watch.stopped:
            logs.LOGGER.info("idle stop: %s", line)
            self.post_message(msg.Notice(line, title="idle stop", timeout=10))
        return watch.servers, watch.next_stop_s

    def _check_catalog(self) -> None:
        """An edited catalog file is loaded again (a stat per file each servers poll, a load
        only after a change); a broken edit leaves the catalog in use and says why."""
        watch = self._catalog_watch
        if watch is None or not watch.changed():
            return
        try:
            self.post_message(msg.CatalogReloaded(watch.reload(self.control)))
        except Exception as exc:  # never let a reload bug stop the refresh
            logs.LOGGER.error("catalog reload failed", exc_info=exc)
            self.post_message(msg.Notice(f"catalog reload failed: {exc}", severity="error"))

    def _all_idle(self, servers: tuple[ServerInfo, ...]) -> bool:
        """Nothing to watch closely: every server ready with nothing running and no tokens
        flowing, no serve/stop under way, no download elsewhere growing."""
        if self.busy or any(d.active for d in self.downloads.external):
            return False
        return all(
            s.health == READY and not s.running and not s.waiting
            and not s.prompt_tps and not s.gen_tps
            for s in servers
        )  # fmt: skip

    # -- showing what the feeds bring ---------------------------------------------------------

    @on(msg.SnapshotTaken)
    def _show(self, message: msg.SnapshotTaken) -> None:
        snapshot = message.snapshot
        if self.last_snapshot is None:
            self.call_after_refresh(self._after_first_frame)
        self.last_snapshot = snapshot
        self.refreshes += 1
        self._log_gpu_problem(snapshot)
        self._memory.show(snapshot)
        self._gpu_panel.show(snapshot)
        if self.compact:
            self._summary.show(snapshot)
        else:
            self._summary.snapshot = snapshot
        title = f"GPUs ({len(snapshot.gpus)})" if snapshot.gpus else "GPUs"
        if self._gpus_box.border_title != title:
            self._gpus_box.border_title = title
        self._show_topbar(snapshot)
        self.app.snapshot_ready.set()  # type: ignore[attr-defined]

    async def _after_first_frame(self) -> None:
        """Servers and downloads join once memory and GPUs are on screen."""
        await self._mount_servers_box()  # before the first poll result can arrive
        if self.focused is None:  # arrows move in the servers table from the start
            assert self._servers_table is not None
            self._servers_table.focus()
        if self.watch_servers:
            self._servers_loop()

    def _log_gpu_problem(self, snapshot: Snapshot) -> None:
        problem = snapshot.gpu_unavailable_reason or "; ".join(
            f"GPU {g.index}: {g.error}" for g in snapshot.gpus if g.error
        )
        if problem == self._gpu_problem:
            return
        if problem:  # a warning when it changes mid-run (GPU lost), not at start
            level = logging.INFO if self._gpu_problem is None else logging.WARNING
            logs.LOGGER.log(level, "GPU: %s", problem)
        elif self._gpu_problem:
            logs.LOGGER.info("GPU: answering again")
        self._gpu_problem = problem

    def _show_topbar(self, snapshot: Snapshot) -> None:
        warned = len(logs.recent())
        warnings = f"{warned} warning{'s' if warned != 1 else ''} (w)" if warned else ""
        up = f"up {fmt_uptime(snapshot.uptime_s)}"
        host = snapshot.hostname
        if snapshot.host_root:  # --host-root: the node seen from a debug container
            host += f" (through {snapshot.host_root})"
        version, disk = f"sparktop {__version__}", disk_line(self.disks)
        every = f"every {self.interval:g} s"
        if self.compact:
            parts = [host, up, warnings, "? help"]
        else:
            parts = [version, host, up, disk, every, warnings, "? help"]
        width = self.app.size.width - 2
        for drop in (version, every, disk, up):  # what goes first when the bar is too narrow
            if len(" │ ".join(p for p in parts if p)) <= width:
                break
            parts = [p for p in parts if p != drop]
        topbar = " │ ".join(p for p in parts if p)
        if topbar != self._topbar_text:
            self._topbar_text = topbar
            self._topbar.update(topbar)

    @on(msg.ServersPolled)
    def _show_servers(self, message: msg.ServersPolled) -> None:
        servers = message.servers
        self.server_polls += 1
        self._log_health(servers)
        self._warn_low_disk()
        self._record_history(servers)
        appeared_or_gone = bool(servers) != bool(self.servers)
        count_changed = len(servers) != len(self.servers)
        self.servers = servers
        if appeared_or_gone:
            self.refresh_bindings()  # server keys show in the footer only when they can act
        if count_changed:
            self._share_rows()
        # mounted before the servers loop starts (_after_first_frame awaits it)
        assert self._servers_table is not None and self._servers_box is not None
        self._servers_table.show(servers)
        self._summary.servers = servers
        if self.compact and self._summary.snapshot is not None:
            self._summary.redraw()
        title = f"Servers ({len(servers)})" if servers else "Servers (none running: m for models)"
        if self._servers_box.border_title != title:
            self._servers_box.border_title = title
        self.app.servers_ready.set()  # type: ignore[attr-defined]

    def _record_history(self, servers: tuple[ServerInfo, ...]) -> None:
        """Each poll's figures kept per server; an open detail screen shows them."""
        from sparktop.ui.screens.server_detail import ServerDetailScreen

        self._histories().record(servers)
        for screen in self.app.screen_stack:
            if isinstance(screen, ServerDetailScreen):
                screen.show(servers)

    @on(ServersTable.DetailsRequested)
    def _show_details(self, message: ServersTable.DetailsRequested) -> None:
        """`enter` on a server row: the server in full, with its recent figures."""
        from sparktop.ui.screens.server_detail import ServerDetailScreen

        self.app.push_screen(ServerDetailScreen(message.server, self._histories()))

    def _histories(self) -> ServerHistories:
        """Each server's recent figures, made at first need (the detail screen's import)."""
        if self.server_histories is None:
            from sparktop.ui.screens.server_detail import ServerHistories

            self.server_histories = ServerHistories()
        return self.server_histories

    def _warn_low_disk(self) -> None:
        """A notice (once while it lasts) when downloads need more room than is free."""
        low = {d.mount for d in self.disks if d.low}
        for line in low_space([d for d in self.disks if d.mount in low - self._disks_warned]):
            self.notify(line, title="disk", severity="warning", timeout=12)
            logs.LOGGER.warning(line)
        self._disks_warned = low
        if self.last_snapshot is not None:
            self._show_topbar(self.last_snapshot)

    def _log_health(self, servers: tuple[ServerInfo, ...]) -> None:
        """A server's health changing (ready → not responding, crashed, gone) is logged."""
        seen: dict[tuple[int | None, int | None], str] = {}
        for server in servers:
            key = (server.pid, server.port)
            seen[key] = server.health
            before = self._health.get(key)
            if before == server.health:
                continue
            logs.LOGGER.log(
                logging.WARNING if server.health in BAD_HEALTH else logging.INFO,
                "server %s (pid %s, port %s): %s%s%s",
                server.name, server.pid, server.port, f"{before} → " if before else "",
                server.health, f": {server.health_detail}" if server.health_detail else "",
            )  # fmt: skip
        for key in self._health.keys() - seen.keys():
            logs.LOGGER.info("server pid %s port %s: gone", *key)
        self._health = seen

    # -- downloads ------------------------------------------------------------------------

    @property
    def downloads(self) -> Downloads:
        """The downloads of this view (built on first use, off the first frame's path)."""
        with self._downloads_lock:
            if self._downloads is None:
                from sparktop.actions.downloads import Downloads

                self._downloads = Downloads(
                    on_change=lambda: self.post_message(msg.DownloadsChanged()),
                    local_dirs=self._watched_dirs,
                    parallel_files=self.control.config.downloads.parallel,
                )
            return self._downloads

    def _watched_dirs(self) -> list:
        """Where downloads started elsewhere are looked for: the catalog's model dirs."""
        return [(e.local_dir, e.repo) for e in self.control.catalog if e.local_dir is not None]

    @on(msg.DownloadsChanged)
    def _show_downloads(self) -> None:
        if self._downloads is None:
            return
        rows = self._downloads.rows()
        if rows == self._download_rows:
            return  # posted at every servers poll: nothing to redraw most of the time
        self._download_rows = rows
        self._summary.downloads = rows
        if self._downloads_table is not None and self._downloads_box is not None:
            self._downloads_table.show(rows)
            self._downloads_box.display = bool(rows)
            self._share_rows()  # the downloads box takes its rows from the servers'
            running = sum(1 for r in rows if r.state in ACTIVE)
            title = f"Downloads ({running} running)" if running else "Downloads"
            if self._downloads_box.border_title != title:
                self._downloads_box.border_title = title

    def on_downloads_table_cancel_requested(self, message: Any) -> None:
        from sparktop.actions.downloads import CANCELLING

        if self.downloads.cancel(message.job_id):
            self.notify(CANCELLING, timeout=4)
        else:  # a finished, failed or cancelled row: say why x did nothing
            self.notify("that download is not running: nothing to cancel", timeout=4)

    @on(msg.DownloadRequested)
    def _download_requested(self, message: msg.DownloadRequested) -> None:
        """`d` on a catalog entry: ask the Hub what it is (off the UI thread), confirm, start."""
        self._plan_download(message.entry)

    @work(thread=True, group="download-plan")
    def _plan_download(self, entry: ModelEntry) -> None:
        from sparktop.actions.downloads import entry_refusal, plan_entry

        refusal = entry_refusal(entry)
        if refusal:  # said at once, without asking the Hub first
            self.post_message(msg.Notice(refusal, title=f"download {entry.name}",
                                         severity="error", timeout=12))  # fmt: skip
            return
        self.post_message(msg.Notice(f"asking the Hub about {entry.repo or entry.name} …",
                                     timeout=3))  # fmt: skip
        try:
            plan = plan_entry(entry)
        except ActionError as exc:
            self.post_message(msg.Notice(str(exc), title=f"download {entry.name}",
                                         severity="error", timeout=12))  # fmt: skip
            return
        self.post_message(msg.DownloadPlanned(entry, plan))

    @on(msg.DownloadPlanned)
    def _confirm_download(self, message: msg.DownloadPlanned) -> None:
        from sparktop.actions.downloads import confirm_lines
        from sparktop.ui.screens.dialogs import ConfirmScreen

        entry, plan = message.entry, message.plan

        def answered(yes: bool | None) -> None:
            if yes:
                self.downloads.start(plan, tuple(entry.include))
                self._show_downloads()

        question = "\n".join(confirm_lines(plan))
        self.app.push_screen(ConfirmScreen(f"download {entry.name}", question), answered)

    @on(msg.CatalogReloaded)
    def _catalog_reloaded(self, message: msg.CatalogReloaded) -> None:
        from sparktop.ui.screens.catalog import CatalogScreen

        outcome = message.outcome
        self.catalog_problems = () if outcome.applied else outcome.errors
        if outcome.applied:
            self.notify(outcome.message(), title="catalog", timeout=6)
        else:  # one line per problem, also kept in the log (w)
            text = "\n".join((outcome.message(), *outcome.errors))
            self.notify(text, title="catalog", severity="warning", timeout=20)
        for screen in self.app.screen_stack:
            if isinstance(screen, CatalogScreen):
                screen.reload()

    # -- messages from the action workers ----------------------------------------------------

    @on(msg.Progress)
    def _progress(self, message: msg.Progress) -> None:
        for line in self.query("#serve-progress").results(Static):
            line.update(message.text)
            line.display = bool(message.text)  # no empty row under the servers

    @on(msg.Notice)
    def _notice(self, message: msg.Notice) -> None:
        self.notify(message.text, title=message.title, severity=message.severity,  # type: ignore[arg-type]
                    timeout=message.timeout)  # fmt: skip

    @on(msg.ShowText)
    def _show_text(self, message: msg.ShowText) -> None:
        from sparktop.ui.screens.dialogs import TextScreen

        self.app.push_screen(TextScreen(message.title, message.text))

    @on(msg.Finished)
    def _finished(self, message: msg.Finished) -> None:
        self.busy = None
        self.producer.wake_servers()

    def _report(self, action: str):
        """Action events as this screen's progress line (from a worker thread)."""

        def show(event: Event) -> None:
            tail = ("\n  " + event.detail[-1][:120]) if event.detail else ""
            text = f"{action}: {event.stage} — {event.message} [{event.elapsed_s:.0f} s]{tail}"
            self.post_message(msg.Progress("server", text))
            self.producer.wake_servers()

        return show

    # -- server flows -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Server keys are bound (and in the footer) only while a server row is on screen
        and selected: not before a server exists, not in the compact summary."""
        return action not in SERVER_ACTIONS or self._shown_server() is not None

    def _shown_server(self) -> ServerInfo | None:
        """The selected row of the servers table, when the table is on screen."""
        table = self._servers_table
        if table is None or self.compact:
            return None
        return table.selected

    def _selected_server(self) -> ServerInfo | None:
        server = self._shown_server()
        if server is None:
            self.notify("no server selected (none running? press m for models)", timeout=4)
        return server

    def action_models(self) -> None:
        from sparktop.ui.screens.catalog import CatalogScreen

        self.app.push_screen(CatalogScreen(self))

    def action_hosts(self) -> None:
        """Every configured host in one table, this box first (the fleet screen)."""
        from sparktop.ui.screens.fleet import FleetScreen, app_local_status

        self.app.push_screen(
            FleetScreen(
                self.producer.config.hosts,
                lambda: app_local_status(self.app),
                catalog_names=lambda: [entry.name for entry in self.control.catalog],
            )
        )

    def action_refresh(self) -> None:
        self.wake()

    def _start(self, what: str) -> bool:
        """One serve or stop at a time: False (and said so) while another runs."""
        if self.busy:
            self.notify(f"busy: {self.busy}", severity="warning")
            return False
        self.busy = what
        return True

    @on(msg.ServeRequested)
    def _serve_requested(self, message: msg.ServeRequested) -> None:
        """`s` on a catalog entry: plan, confirm what must be confirmed, then serve."""
        if self.busy:
            self.notify(f"busy: {self.busy}", severity="warning")
            return
        self._plan_serve(message.entry)

    @work(thread=True, group="serve")
    def _plan_serve(self, entry: ModelEntry) -> None:
        try:
            plan = _actions().plan_serve(self.control, entry, self.servers)
        except Exception as exc:
            self.post_message(msg.Notice(str(exc), severity="error"))
            return
        self.post_message(msg.ServePlanned(plan))

    @on(msg.ServePlanned)
    def _confirm_serve(self, message: msg.ServePlanned) -> None:
        from sparktop.ui.screens.dialogs import ConfirmScreen

        plan = message.plan
        entry = plan.entry
        refusal = _actions().serve_refusal(plan)
        if refusal:
            already = plan.already_running is not None
            self.notify(refusal, title="" if already else f"cannot serve {entry.name}",
                        severity="information" if already else "error")  # fmt: skip
            return
        question = _actions().serve_question(plan)
        if not question:
            self._run_serve(plan)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_serve(plan)

        self.app.push_screen(ConfirmScreen(f"serve {entry.name}", "\n".join(question)), answered)

    def _run_serve(self, plan: ServePlan) -> None:
        if self._start(f"serving {plan.entry.name}"):
            self._serve_worker(plan)

    @work(thread=True, group="serve")
    def _serve_worker(self, plan: ServePlan) -> None:
        entry = plan.entry
        try:
            outcome = _actions().serve(self.control, plan, confirmed=True, force=True,
                                       evict=True, report=self._report(entry.name))  # fmt: skip
        except ActionError as exc:
            text = str(exc) + ("\n\n" + "\n".join(exc.detail) if exc.detail else "")
            self.post_message(msg.ShowText(f"serve {entry.name} failed", text))
        else:
            self.post_message(msg.Notice(outcome.message, timeout=5))
        finally:
            self.post_message(msg.Progress("server", ""))
            self.post_message(msg.Finished("serve"))

    def action_stop(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        if self.busy:
            self.notify(f"busy: {self.busy}", severity="warning")
            return
        plan = _actions().plan_stop(self.control, server)
        runtime = plan.runtime_stop is not None  # a container: offer `docker stop NAME`
        if not plan.needs_confirmation and not runtime:
            self._run_stop(plan)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_stop(plan, runtime)

        from sparktop.ui.screens.dialogs import ConfirmScreen

        question = plan.runtime_question if runtime else plan.question
        self.app.push_screen(ConfirmScreen(f"stop {server.name}", question), answered)

    def _run_stop(self, plan: StopPlan, runtime: bool = False) -> None:
        if self._start(f"stopping {plan.server.name}"):
            self._stop_worker(plan, runtime)

    @work(thread=True, group="serve")
    def _stop_worker(self, plan: StopPlan, runtime: bool = False) -> None:
        server = plan.server
        self.post_message(msg.Progress("server", f"stopping {server.name} (pid {server.pid})…"))
        try:
            outcome = _actions().stop(self.control, plan, confirmed=True, runtime_stop=runtime)
        except ActionError as exc:
            self.post_message(msg.Notice(str(exc), timeout=5))
        else:
            self.post_message(msg.Notice(outcome.message, timeout=6))
        finally:
            self.post_message(msg.Progress("server", ""))
            self.post_message(msg.Finished("stop"))

    def action_test(self) -> None:
        server = self._selected_server()
        if server is not None and server.url:
            self.post_message(msg.Progress("server", f"testing {server.name}…"))
            self._test_worker(server)

    @work(thread=True, group="test")
    def _test_worker(self, server: ServerInfo) -> None:
        try:
            outcome = _actions().run_test(self.control, server)
        except ActionError as exc:
            self.post_message(msg.Notice(str(exc), severity="error"))
        else:
            self.post_message(msg.ShowText(f"test {server.name}", "\n".join(outcome.lines())))
        finally:
            self.post_message(msg.Progress("server", ""))

    def action_logs(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        try:
            path = _actions().log_path(self.control, server)
        except ActionError as exc:
            self.notify(str(exc), timeout=4)
            return
        from sparktop.ui.screens.dialogs import TextScreen

        def read() -> str:
            return "\n".join(_actions().logs(self.control, server, 200).lines)

        self.app.push_screen(TextScreen(f"log {path}", read(), refresh=read))

    def action_bench(self) -> None:
        server = self._selected_server()
        if server is None:
            return
        try:
            _actions().ready(server)
        except ActionError as exc:
            self.notify(str(exc), timeout=4)
            return
        from sparktop.ui.screens.bench import BenchScreen

        prompt, gen, reps = self.bench_lengths
        self.app.push_screen(BenchScreen(server, self.control, prompt=prompt, gen=gen, reps=reps))

    def action_export(self) -> None:
        server = self._selected_server()
        if server is not None:
            self._show_export(server)

    @on(msg.ExportRequested)
    def _export_requested(self, message: msg.ExportRequested) -> None:
        self._show_export(message.entry)

    def _show_export(self, target: ModelEntry | ServerInfo) -> None:
        from sparktop.ui.screens.dialogs import TextScreen

        try:
            name = target if isinstance(target, ServerInfo) else target.name
            outcome = _actions().export_opencode(self.control, name)
        except ActionError as exc:
            self.notify(str(exc), timeout=4)
            return
        self.app.push_screen(TextScreen(outcome.title, outcome.text()))
