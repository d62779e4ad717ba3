"""Read a GGUF file's key/values without decoding the ones nobody asked for.

`gguf.GGUFReader` builds numpy views of every string of every array before it returns, and so
does `GGUFReader(...).fields`: seconds for a tokenizer of 150k tokens and 150k merges, all to
read a handful of integers. This reader walks the same header (GGUF v2/v3, either byte order)
in the mapped file, decodes only the keys `wanted` accepts, and skips the rest: a numeric
array by its size, a string array by a regular expression that steps over 256 short strings
per call (`_short_strings`): the strings' lengths are only known one after another, and a
Python loop over 300k of them costs 3-4 times as long as the expression's.
Decoded values are what `ReaderField.contents()` gives for the same key.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

STRING, ARRAY = 8, 9
_SCALARS = dict(zip((0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12), "BbHhIif?Qqd", strict=True))
"""Struct formats of the scalar value types, by GGUF type code."""
_SIZES = {code: struct.calcsize(fmt) for code, fmt in _SCALARS.items()}
_PSEUDO_KEYS = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count")
"""Names `GGUFReader.fields` gives the header's own numbers: a key/value with one of them is
a duplicate key there, and so here."""
_CHUNK = 256
"""Strings one regular-expression match steps over."""
_BULK = 4096
"""Arrays of fewer strings are stepped over one by one: the expression takes ~5 ms to compile."""
_SHORT = 128
"""Strings that long or longer are stepped over one by one; tokens and merges rarely are, and
twice the limit takes three times as long to compile."""


class GgufFormatError(ValueError):
    """The file is not a GGUF this reader understands, or it ends inside its header."""


@cache
def _short_strings(count: int) -> re.Pattern[bytes]:
    """`count` little-endian GGUF strings of under `_SHORT` bytes each, back to back."""
    one = b"|".join(rb"\x%02x\x00{7}" % n + (rb".{%d}" % n if n else b"") for n in range(_SHORT))
    return re.compile(rb"(?s)(?:" + one + rb"){%d}" % count)


class _Header:
    """A read position in the mapped file (mapped as `GGUFReader` does: read-only, in place)."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0
        self.order = "<"

    def take(self, size: int) -> int:
        """Advance over `size` bytes that must be in the file; the offset they start at."""
        start = self.pos
        if start + size > len(self.buf):
            raise GgufFormatError("the file ends inside its header")
        self.pos = start + size
        return start

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        fmt = self.order + fmt
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt)))

    def raw_bytes(self, size: int) -> bytes:
        start = self.take(size)
        return self.buf[start : start + size]

    def raw_string(self) -> bytes:
        return self.raw_bytes(self.unpack("Q")[0])

    def value(self, vtype: int) -> Any:
        """The value of type `vtype` at the position, as `ReaderField.contents()` gives it;
        None where that raises (text that is not UTF-8) or for an array of arrays."""
        if vtype == STRING:
            return _text(self.raw_string())
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])[0]
        if vtype != ARRAY:
            raise GgufFormatError(f"unknown value type {vtype}")
        itype, count = self.unpack("IQ")
        if itype in _SCALARS:
            return list(self.unpack(f"{count}{_SCALARS[itype]}"))
        items = [self.value(itype) for _ in range(count)]
        if itype != STRING or None in items:
            return None
        return items

    def skip(self, vtype: int) -> None:
        """Step over a value of type `vtype` without decoding it."""
        if vtype == STRING:
            self.skip_strings(1)
        elif vtype in _SIZES:
            self.take(_SIZES[vtype])
        elif vtype != ARRAY:
            raise GgufFormatError(f"unknown value type {vtype}")
        else:
            itype, count = self.unpack("IQ")
            if itype in _SIZES:
                self.take(_SIZES[itype] * count)
            elif itype == STRING:
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.skip(itype)

    def skip_strings(self, count: int) -> None:
        buf, pos, end = self.buf, self.pos, len(self.buf)
        bulk = self.order == "<" and count >= _BULK
        pattern = _short_strings(_CHUNK) if bulk else None
        length_at = struct.Struct(self.order + "Q").unpack_from
        while count:
            if pattern is not None and count >= _CHUNK:
                match = pattern.match(buf, pos)
                if match is not None:
                    pos = match.end()
                    count -= _CHUNK
                    continue
            # The tail, or a string of `_SHORT` bytes or more among the next ones: one by one.
            for _ in range(min(count, _CHUNK)):
                if pos + 8 > end:
                    raise GgufFormatError("the file ends inside its header")
                pos += 8 + length_at(buf, pos)[0]
                count -= 1
        self.pos = pos
        self.take(0)  # the last string's end is in the file


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_kv(path: Path | str, wanted: Callable[[str], bool]) -> dict[str, Any]:
    """The key/values of the GGUF file at `path` whose key `wanted` accepts.

    Raises OSError when the file cannot be read, GgufFormatError when it is no GGUF v2/v3
    (bad magic, other version, unknown value type, duplicate key, cut short).
    """
    with open(path, "rb") as handle:
        try:
            buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            raise GgufFormatError("no GGUF magic") from None
    with buf:
        return _read_kv(_Header(buf), wanted)


def _read_kv(header: _Header, wanted: Callable[[str], bool]) -> dict[str, Any]:
    if header.raw_bytes(4) != b"GGUF":
        raise GgufFormatError("no GGUF magic")
    (version,) = header.unpack("I")
    if version & 0xFFFF == 0:  # written for the other byte order
        header.order = ">"
        version = int.from_bytes(version.to_bytes(4, "little"), "big")
    if version not in (2, 3):
        raise GgufFormatError(f"GGUF version {version} is not supported")
    _tensors, kv_count = header.unpack("QQ")
    seen = set(_PSEUDO_KEYS)
    values: dict[str, Any] = {}
    for _ in range(kv_count):
        key = _text(header.raw_string())
        if key is None:
            raise GgufFormatError("a key that is not UTF-8")
        if key in seen:
            raise GgufFormatError(f"duplicate key {key}")
        seen.add(key)
        (vtype,) = header.unpack("I")
        if wanted(key):
            values[key] = header.value(vtype)
        else:
            header.skip(vtype)
    return values
