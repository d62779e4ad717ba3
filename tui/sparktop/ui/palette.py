"""The command palette (ctrl+p): every sparktop key valid on the current screen, as a command.

A command runs the same action as its key, on the same widget or screen, and only the keys
that would act on the screen below the palette are listed (the main view's stop, test and
bench only while a server row is selected there; serve on the Models screen …).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.actions import parse
from textual.app import SystemCommand
from textual.binding import Binding

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode
    from textual.screen import Screen

REPLACED = {"Quit"}
"""Textual's commands that sparktop's own keys run the same way (listed once)."""
RENAMED = {"Theme": ("Theme by name", "Switch to a colour theme chosen by name")}
"""Textual's commands that would read like one of sparktop's keys (c: next theme)."""


def _declared_by_sparktop(node: DOMNode, binding: Binding) -> bool:
    """True for bindings written in sparktop's classes (not Textual's scrolling and focus)."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("sparktop."):
            continue
        for declared in vars(cls).get("BINDINGS", ()):
            if (
                isinstance(declared, Binding)
                and declared.action == binding.action
                and declared.description == binding.description
            ):
                return True
    return False


def key_commands(app: App, screen: Screen) -> Iterator[SystemCommand]:
    """One command per sparktop action that a key would run on `screen` now."""
    seen: set[tuple[int, str, tuple[object, ...]]] = set()
    for active in screen.active_bindings.values():
        binding, node = active.binding, active.node
        if not active.enabled or not binding.show or not binding.description:
            continue
        if not _declared_by_sparktop(node, binding):
            continue
        namespace, name, parameters = parse(binding.action)
        target = {"app": app, "screen": screen}.get(namespace, node)
        key = (id(target), name, parameters)
        if key in seen:  # the main view repeats the App's q and ?
            continue
        seen.add(key)
        title = binding.tooltip or binding.description
        help_text = f"key {app.get_key_display(binding)}"
        yield SystemCommand(title, help_text, partial(app.run_action, binding.action, node))


def palette_commands(
    app: App, screen: Screen, textual_commands: Iterable[SystemCommand]
) -> Iterator[SystemCommand]:
    """sparktop's key commands for `screen`, then Textual's own (theme by name, keys panel …)."""
    yield from key_commands(app, screen)
    for command in textual_commands:
        if command.title in REPLACED:
            continue
        title, help_text = RENAMED.get(command.title, (command.title, command.help))
        yield command._replace(title=title, help=help_text)
