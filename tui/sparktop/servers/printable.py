"""Text a server sent (a model's reply, an error body, a model id), made safe to print: no
control character reaches a terminal, where an ESC could rewrite the screen or the title."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0, DEL and C1: every control character of Unicode's Cc category."""


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with each control character shown as `\\x1b` (tab, CR and, unless `newlines`
    keeps them, newline: a plain space)."""

    def visible(match: re.Match[str]) -> str:
        char = match.group()
        if char == "\n" and newlines:
            return char
        if char in "\t\r\n":
            return " "
        return f"\\x{ord(char):02x}"

    return _CONTROL.sub(visible, text)
