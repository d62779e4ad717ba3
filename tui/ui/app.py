"""The full-screen sparktop app. It renders Snapshots; all reading happens in the core,
on a worker thread, so a slow probe never freezes the screen."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.events import Resize
from textual.theme import Theme
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from sparktop import __version__
from sparktop.config import Config
from sparktop.probes.system import SystemProbe
from sparktop.snapshot import Snapshot
from sparktop.state import StateFile
from sparktop.ui.screens.help import HelpScreen
from sparktop.ui.themes import CONSOLE_THEME, DEFAULT_THEME, load_themes
from sparktop.ui.widgets.gpu_panel import GpuPanel
from sparktop.ui.widgets.memory_panel import MemoryPanel
from sparktop.units import fmt_duration

WIDE_AT = 140  # columns from which memory and GPUs sit side by side


class SparktopApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "sparktop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("c", "cycle_theme", "Theme"),
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
    ) -> None:
        super().__init__()
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
        self.snapshot_ready = asyncio.Event()
        self._wake = threading.Event()
        self._stopping = False
        self._topbar_text = ""

    # -- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(f"sparktop {__version__}", id="topbar")
        with Container(id="system"):
            yield MemoryPanel(id="memory")
            with VerticalScroll(id="gpus") as gpus:
                gpus.border_title = "GPUs"
                yield GpuPanel(id="gpu-panel")
        yield Footer()

    def on_mount(self) -> None:
        for theme in self.sparktop_themes.values():
            self.register_theme(theme)
        self.theme = self._initial_theme()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.query_one(MemoryPanel).interval = self.interval
        if self.ui_state.problem:
            self.startup_warnings.append(self.ui_state.problem)
        for warning in self.startup_warnings:
            self.notify(warning, title="warning", severity="warning", timeout=12)
        self._probe_loop()

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

    def _remember_theme(self, theme: Theme) -> None:
        if self.ui_state.load().get("theme") != theme.name and not self.ui_state.update(
            theme=theme.name
        ):
            self.notify(self.ui_state.problem or "cannot save theme", severity="warning")

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE_AT
        self.screen.set_class(wide, "wide")
        self.query_one(MemoryPanel).fill = wide

    # -- data ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, name="probe", group="probe")
    def _probe_loop(self) -> None:
        """Collect a Snapshot every interval on this worker thread; hand it to the UI."""
        worker = get_current_worker()
        while not worker.is_cancelled and not self._stopping:
            started = time.monotonic()
            snapshot = self.probe.collect()
            try:
                self.call_from_thread(self._show, snapshot)
            except RuntimeError:  # the app is shutting down
                return
            spent = time.monotonic() - started
            self._wake.wait(max(0.0, self.interval - spent))
            self._wake.clear()

    def _show(self, snapshot: Snapshot) -> None:
        self.last_snapshot = snapshot
        self.query_one(MemoryPanel).show(snapshot)
        self.query_one(GpuPanel).show(snapshot)
        gpus = self.query_one("#gpus", VerticalScroll)
        title = f"GPUs ({len(snapshot.gpus)})" if snapshot.gpus else "GPUs"
        if gpus.border_title != title:
            gpus.border_title = title
        topbar = (
            f"sparktop {__version__} │ {snapshot.hostname} │ up {fmt_duration(snapshot.uptime_s)}"
            f" │ every {self.interval:g} s │ ? help"
        )
        if topbar != self._topbar_text:
            self._topbar_text = topbar
            self.query_one("#topbar", Static).update(topbar)
        self.snapshot_ready.set()

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

    def action_cycle_theme(self) -> None:
        names = sorted(self.sparktop_themes) or sorted(self.available_themes)
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_refresh_now(self) -> None:
        self._wake.set()

    async def action_quit(self) -> None:
        self._stopping = True
        self._wake.set()
        self.exit(0)

    def on_unmount(self) -> None:
        self._stopping = True
        self._wake.set()
        self.probe.close()


def run_app(config: Config, interval: float | None = None, theme: str | None = None) -> int:
    """Entry point used by the CLI; returns the process exit code."""
    themes, warnings = load_themes()
    app = SparktopApp(config, interval=interval, theme=theme, themes=themes, warnings=warnings)
    return app.run() or 0


__all__ = ["SparktopApp", "run_app"]
