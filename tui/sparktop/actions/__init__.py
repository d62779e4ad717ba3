"""The action layer: every verb a user can run, written once for both faces.

`sparktop.cli` prints what these return; `sparktop.ui` shows it. Each action takes plain
arguments, reports progress through one `Event` callback, returns a typed result (a
dataclass with everything either face shows) and raises `ActionError`, whose `str()` is the
one line users see.

May import: the domain (servers, catalog, downloads, bench, fleet), probes and the base
modules. Never imports a face (cli, ui) or Textual.
"""

from sparktop.actions.errors import ActionError, Cancelled
from sparktop.actions.events import FAILED, Event, Report, quiet

__all__ = ["FAILED", "ActionError", "Cancelled", "Event", "Report", "quiet"]
