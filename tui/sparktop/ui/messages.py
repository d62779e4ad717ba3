"""How workers and screens talk to the main screen: Textual Messages, nothing else.

Worker threads post these (`post_message` is thread-safe); a repeat that is still waiting
in the queue is replaced by the newer one (`can_replace`), so a slow frame never builds a
backlog of stale snapshots. Screens ask for actions with the `…Requested` messages instead
of calling into the App.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from sparktop.catalog.entry import ModelEntry
    from sparktop.catalog_watch import Reload
    from sparktop.control import Control
    from sparktop.downloads.hub import DownloadPlan
    from sparktop.servers.info import ServerInfo
    from sparktop.servers.supervisor import ServePlan
    from sparktop.snapshot import Snapshot


class _Latest(Message):
    """A message of which only the latest pending one matters (handled where it is posted:
    it does not bubble up to the App)."""

    bubble = False

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)


class SnapshotTaken(_Latest):
    """The probe worker read memory, GPUs and hints."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class ServersPolled(_Latest):
    """The servers worker discovered and polled every server."""

    def __init__(self, servers: tuple[ServerInfo, ...]) -> None:
        super().__init__()
        self.servers = servers


class DownloadsChanged(_Latest):
    """A download moved on (bytes, state): redraw the Downloads box."""


class Progress(Message):
    """A running action's progress line (empty text clears it)."""

    def __init__(self, action: str, text: str) -> None:
        super().__init__()
        self.action = action
        self.text = text

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress) and message.action == self.action


class Notice(Message):
    """A one-line result or problem for the notification area (and the log)."""

    def __init__(self, text: str, *, title: str = "", severity: str = "information",
                 timeout: float = 5.0) -> None:  # fmt: skip
        super().__init__()
        self.text, self.title, self.severity, self.timeout = text, title, severity, timeout


class ShowText(Message):
    """A report to show in a scrollable dialog (a test's checks, a failed serve's log)."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title = title
        self.text = text


class Finished(Message):
    """An action ended (the busy flag clears, the servers are polled again)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action


class ServeRequested(Message):
    def __init__(self, entry: ModelEntry) -> None:
        super().__init__()
        self.entry = entry


class DownloadRequested(Message):
    def __init__(self, entry: ModelEntry) -> None:
        super().__init__()
        self.entry = entry


class ExportRequested(Message):
    def __init__(self, entry: ModelEntry) -> None:
        super().__init__()
        self.entry = entry


class ServePlanned(Message):
    """A serve was planned off the UI thread: confirm what must be confirmed, then serve."""

    def __init__(self, plan: ServePlan) -> None:
        super().__init__()
        self.plan = plan


class DownloadPlanned(Message):
    """The Hub answered what a download would fetch: confirm, then start it."""

    def __init__(self, entry: ModelEntry, plan: DownloadPlan) -> None:
        super().__init__()
        self.entry = entry
        self.plan = plan


class CatalogReloaded(Message):
    """A catalog file was edited: the catalog was loaded again (or the edit was not used)."""

    def __init__(self, outcome: Reload) -> None:
        super().__init__()
        self.outcome = outcome


class BoxView(Protocol):
    """What other screens read from the main screen: the wiring and the latest servers."""

    @property
    def control(self) -> Control: ...

    @property
    def servers(self) -> tuple[ServerInfo, ...]: ...

    @property
    def catalog_problems(self) -> tuple[str, ...]: ...

    def post_message(self, message: Message) -> bool: ...
