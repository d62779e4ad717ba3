"""`?`: every key binding of the screen it was opened from, with what it does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


def in_effect(
    bindings: Iterable[BindingType], active: Mapping[str, ActiveBinding]
) -> list[Binding]:
    """The App's `bindings` a screen leaves in effect: not those whose key the screen (or its
    focused widget) binds to something else (the bench screen's `c` is its concurrency
    sweep, not the theme), so help lists what a key does there."""
    return [
        b for b in bindings
        if isinstance(b, Binding)
        and ((near := active.get(b.key)) is None
             or near.binding.action.removeprefix("app.") == b.action)
    ]  # fmt: skip


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close help", key_display="esc"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: auto; max-width: 90%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 2;
    }
    HelpScreen Static { width: 100%; }
    """
    FRAME = 2 + 4 + 1
    """Border, padding and the scrollbar around the text."""

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]], intro: str = "") -> None:
        super().__init__()
        self.sections = sections
        self.rows = [row for _, rows in sections for row in rows]
        self.intro = intro

    def compose(self) -> ComposeResult:
        width = max((len(key) for key, _ in self.rows), default=4)
        lines: list[Content] = []
        for title, rows in self.sections:
            if lines:
                lines.append(Content(""))
            lines.append(Content.assemble((title, "bold $accent")))
            for key, description in rows:
                lines.append(
                    Content.assemble((f"{key:>{width}}", "bold $primary"), "  ", description)
                )
        widest = max((line.cell_length for line in lines), default=0)
        widest = max(widest, 48)  # room for the paragraphs below
        if self.intro:
            lines += [Content(""), Content.assemble((self.intro, "$text-muted"))]
        lines += [Content(""), Content.assemble(("esc closes this help", "$text-muted"))]
        with VerticalScroll() as scroll:
            scroll.border_title = "sparktop help"
            # as wide as the widest key line (max-width keeps it inside the window); the
            # paragraphs wrap at that width instead of being cut
            scroll.styles.width = widest + self.FRAME
            yield Static(Content("\n").join(lines))
