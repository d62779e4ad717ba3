"""The full-screen sparktop app: lifecycle, themes and screens.

The main view and its flows live in `ui/screens/main.py`; all reading and acting happens in
the core (`sparktop.collect`, `sparktop.actions`) on worker threads, so a slow probe or
server never freezes the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.screen import Screen
from textual.theme import Theme

from sparktop import logs
from sparktop.config import Config
from sparktop.probes.system import SystemProbe
from sparktop.state import StateFile
from sparktop.ui.charset import CHARSET, Cp437Filter, key_display
from sparktop.ui.screens.help import HelpScreen, in_effect
from sparktop.ui.screens.main import MainScreen
from sparktop.ui.themes import CONSOLE_THEME, DEFAULT_THEME, load_themes
from sparktop.ui.widgets.summary_panel import MIN_COLUMNS, MIN_ROWS

if TYPE_CHECKING:
    from sparktop.control import Control
    from sparktop.servers.info import ServerInfo
    from sparktop.snapshot import Snapshot

WIDE_AT = 140  # columns from which memory and GPUs sit side by side
HANGUP_GRACE_S = 2.0  # after SIGHUP, seconds for a clean shutdown before leaving regardless


class SparktopApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "sparktop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # keys that act on no screen's rows; the main view's own keys (m, x, t, f, r …) are
        # bound on it, so they never reach it from a screen pushed above
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("c", "cycle_theme", "Theme", tooltip="Next colour theme"),
        Binding("w", "warnings", "Warnings"),
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
        from sparktop.collect import SnapshotProducer

        super().__init__(driver_class=_quiet_driver())
        self._cp437 = Cp437Filter(enabled=False)
        """On while the screen draws for the Linux console font (`uses_cp437`)."""
        self._filters.append(self._cp437)
        self.config = config or Config()
        self.interval = interval or self.config.interval
        probe = probe or SystemProbe(hint_rules=self.config.memory_hints)
        self.producer = SnapshotProducer(self.config, probe=probe, control=control)
        if themes is None:
            themes, theme_warnings = load_themes()
            warnings = [*(warnings or []), *theme_warnings]
        self.sparktop_themes = themes
        self.startup_warnings = list(warnings or [])
        self.ui_state = ui_state or StateFile("ui.json")
        self.requested_theme = theme
        self.snapshot_ready = asyncio.Event()
        self.servers_ready = asyncio.Event()
        self.main = MainScreen(self.producer, interval=self.interval,
                               watch_servers=watch_servers, id="_default")  # fmt: skip

    def get_default_screen(self) -> Screen:
        return self.main

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette: every sparktop key valid on `screen`, then Textual's own."""
        from sparktop.ui.palette import palette_commands

        return palette_commands(self, screen, super().get_system_commands(screen))

    # -- what the main screen holds, for scripts and tests -------------------------------

    @property
    def control(self) -> Control:
        """Catalog, monitor and supervisor; built on first use (after the first frame)."""
        return self.producer.control

    @property
    def servers(self) -> tuple[ServerInfo, ...]:
        return self.main.servers

    @property
    def busy(self) -> str | None:
        return self.main.busy

    @property
    def downloads(self) -> Any:
        return self.main.downloads

    @property
    def last_snapshot(self) -> Snapshot | None:
        return self.main.last_snapshot

    @property
    def refreshes(self) -> int:
        return self.main.refreshes

    @property
    def server_polls(self) -> int:
        return self.main.server_polls

    # -- lifecycle ------------------------------------------------------------------------

    def on_mount(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # SSH dropped or the tmux pane killed: leave quietly; served models keep running
            # (they live in their own sessions) and are adopted again on the next start.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hang_up)
        for theme in self.sparktop_themes.values():
            self.register_theme(theme)
        self.theme = self._initial_theme()
        self._match_charset()
        self._start_theme: str | None = self.theme  # chosen for this run, not by the user
        self._match_no_color_filter()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
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
        self.main.leave()
        # When the terminal itself is gone (SSH dropped, pane killed), Textual's shutdown
        # writes its goodbye sequences to a closed pty: its writer thread dies on EIO and
        # the shutdown then waits on a full queue forever. Leave anyway, shortly after.
        # Nothing is lost: state files are written as they change, and partial downloads
        # are resumed by the next start.
        watchdog = threading.Timer(HANGUP_GRACE_S, os._exit, (0,))
        watchdog.daemon = True
        watchdog.start()
        self.exit(0)

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

    @property
    def uses_cp437(self) -> bool:
        """Drawing only with the VGA console font's characters: on the Linux console, or
        with a theme made for it (`charset: cp437`)."""
        return os.environ.get("TERM") == "linux" or (
            getattr(self.current_theme, "charset", "") == CHARSET
        )

    def _match_charset(self) -> None:
        """The console-font filter follows the terminal and the theme; the footer's key
        names are spelled again."""
        wanted = self.uses_cp437
        if self._cp437.enabled != wanted:
            self._cp437.enabled = wanted
            self.refresh(repaint=True, layout=True)
            self.screen.refresh_bindings()

    def get_key_display(self, binding: Binding) -> str:
        """Keys as Textual shows them; on the console in characters its font has
        (`enter`, not ⏎)."""
        display = super().get_key_display(binding)
        return key_display(display) if self._cp437.enabled else display

    def _remember_theme(self, theme: Theme) -> None:
        self._match_no_color_filter()
        self._match_charset()
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
        width, height = event.size.width, event.size.height
        # too small a window for the panels: the one-line-per-fact summary shows instead
        compact = width < MIN_COLUMNS or height < MIN_ROWS
        self.main.apply_size(wide=width >= WIDE_AT, compact=compact, height=height)

    # -- actions ------------------------------------------------------------------------

    def action_help(self) -> None:
        """Help lists sparktop's own keys (everywhere, then this view's), then the scrolling
        and focus keys of the view."""
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        own_keys: set[str] = set()
        app_keys = in_effect(self.BINDINGS, self.screen.active_bindings)
        for title, bindings in (("sparktop", app_keys), ("This view", self.screen.BINDINGS)):
            own = [b for b in bindings if isinstance(b, Binding) and b.key not in own_keys]
            own_keys |= {b.key for b in own}
            rows = [(self.get_key_display(b), b.description) for b in own]
            if title == "sparktop":
                rows.append(("ctrl+p", "Command palette (switch theme, run any key's action)"))
            if rows:
                sections.append((title, rows))
        general: list[tuple[str, str]] = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if key in own_keys or binding.key in own_keys:
                continue
            description = binding.description or binding.action.replace("_", " ")
            general.append((self.get_key_display(binding), description))
        intro = (
            "Memory is read from /proc/meminfo. On unified-memory machines (DGX Spark, "
            "Strix Halo) the GPU allocates from the same pool, so the bar splits it into "
            "GPU processes, other processes, page cache and free."
        )
        self.push_screen(HelpScreen([*sections, ("Scrolling and focus", general)], intro))

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

    async def action_quit(self) -> None:
        self.main.leave()
        self.exit(0)

    def on_unmount(self) -> None:
        self.main.leave()
        self.producer.close()


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
