"""Drawing with the characters of the Linux VGA console's default font (CP437).

The console (TERM=linux: a Talos or BMC screen, a KVM) shows the 256 glyphs of code page
437: no rounded corners, no eighth blocks, no arrows, no emoji, no braille. `Cp437Filter`
turns every line Textual draws into characters it has, so Textual's own widgets (borders,
scrollbars, footer, notifications) follow too: box corners and lines become ASCII
(`+`, `-`, `|`), eighth blocks the nearest of `_`, `▄`, `█`, `▌`, and anything else
without a glyph a `?` per cell. Strips are filtered once and cached by Textual, so an
unchanged line costs nothing more; the filter is off (and free) in any other terminal.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

CHARSET = "cp437"

_BY_NAME = {"+": "╭╮╰╯┌┐└┘├┤┬┴┼╔╗╚╝╠╣╦╩╬┏┓┗┛┣┫┳┻╋", "-": "─━═╌╍┄┅┈┉▔", "|": "│┃║╎╏┆┇┊┋▕"}
SUBSTITUTES: dict[str, str] = {char: ascii for ascii, chars in _BY_NAME.items() for char in chars}
SUBSTITUTES.update(
    {
        "▁": "_", "▂": "_", "▃": "▄", "▅": "▄", "▆": "█", "▇": "█",
        "▉": "█", "▊": "█", "▋": "▌", "▍": "▌", "▎": "|", "▏": "|",
        "–": "-", "—": "-", "…": "~", "⚠": "!", "→": ">", "←": "<", "↑": "^", "↓": "v",
        "▼": "v", "▲": "^", "▶": ">", "◀": "<", "●": "*", "•": "∙", "×": "x", "✓": "√",
        "✔": "√", "✗": "x", "✘": "x", "⏎": "<", "‘": "'", "’": "'", "“": '"', "”": '"',
    }
)  # fmt: skip
"""Nearest console glyph (one cell each) for characters the font lacks."""

KEY_NAMES = {"⏎": "enter", "↑": "up", "↓": "down", "←": "left", "→": "right", "⇥": "tab"}
"""Key symbols Textual shows in the footer and help, spelled out on the console."""


def encodable(text: str) -> bool:
    """Whether the console font has a glyph for every character of `text`."""
    try:
        text.encode(CHARSET)
    except UnicodeEncodeError:
        return False
    return True


class _Table(dict[int, str]):
    """str.translate's table, filled per character on first sight."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in SUBSTITUTES:  # box lines too: CP437 has ─ and │, the borders are ASCII
            out = SUBSTITUTES[char]
        elif encodable(char):
            out = char
        elif unicodedata.category(char) in ("Mn", "Me", "Cf"):
            out = ""  # combining marks and joiners take no cell of their own
        else:
            out = "?" * max(1, cell_len(char))
        self[code] = out
        return out


TABLE = _Table()


def to_cp437(text: str) -> str:
    """`text` in characters of the console font, each cell still one cell."""
    return text if text.isascii() else text.translate(TABLE)


def key_display(key: str) -> str:
    """A key as shown in the footer and help, in characters the console has."""
    if encodable(key):
        return key
    for symbol, name in KEY_NAMES.items():
        key = key.replace(symbol, name)
    return to_cp437(key)


class Cp437Filter(LineFilter):
    """A line filter keeping only characters of the VGA console font (see module doc)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            segment if segment.control or segment.text.isascii()
            else Segment(to_cp437(segment.text), segment.style, segment.control)
            for segment in segments
        ]  # fmt: skip
