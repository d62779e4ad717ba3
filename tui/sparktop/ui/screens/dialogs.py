"""Small modal screens: yes/no confirmation, and a scrollable text view (test results, export,
logs) from which text can be copied."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 90%; max-width: 110; height: auto; max-height: 90%;
    border: round $accent; background: $surface; padding: 0 1;
}}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Ask before doing something that stops servers or ignores a fit warning."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="ConfirmScreen")
        + """
    ConfirmScreen #question { margin: 1 0; }
    ConfirmScreen #keys { color: $text-muted; }
    """
    )

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static(self.question, id="question", markup=False)
            yield Static("y: yes   n / esc: no", id="keys")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class TextScreen(ModalScreen[None]):
    """Read-only text (select with the mouse or copy all with `y`); optional live refresh."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("y", "copy", "Copy all"),
    ]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="TextScreen")
        + """
    TextScreen TextArea { height: auto; max-height: 40; min-height: 5; }
    TextScreen #keys { color: $text-muted; }
    """
    )

    def __init__(
        self,
        title: str,
        text: str,
        *,
        refresh: Callable[[], str] | None = None,
        every: float = 1.0,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.refresher = refresh
        self.every = every

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield TextArea(self.text, read_only=True, soft_wrap=True, id="text")
            yield Static("y: copy all   esc: close", id="keys")

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.scroll_end(animate=False)
        if self.refresher is not None:
            self.set_interval(self.every, self._refresh)

    def _refresh(self) -> None:
        assert self.refresher is not None
        text = self.refresher()
        if text != self.text:
            self.text = text
            area = self.query_one(TextArea)
            at_end = area.scroll_y >= area.max_scroll_y - 1
            area.load_text(text)
            if at_end:
                area.scroll_end(animate=False)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.notify("copied (through the terminal's clipboard, OSC 52)", timeout=3)
