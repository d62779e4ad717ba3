"""Is a model's reply language, or gibberish / a repetition loop (1–2-bit quants, bad weights)?

Cheap text statistics, no model: a reply is flagged when
- it repeats itself: a short unit fills most of it ("the the the", the same line over and over),
  or it compresses far better than language does;
- it is character soup: many control / replacement / odd symbols;
- it is word salad: almost none of the commonest English words among many words, or "words"
  that are implausibly long or have no vowels.
Text that is mostly CJK skips the English-word checks.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass, field

COMMON = frozenset(
    {
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "here",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "like",
        "make",
        "may",
        "me",
        "more",
        "most",
        "my",
        "no",
        "not",
        "now",
        "of",
        "on",
        "one",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "said",
        "she",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "two",
        "up",
        "us",
        "use",
        "used",
        "using",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yes",
        "very",
        "well",
        "each",
        "many",
        "much",
        "first",
        "new",
        "way",
        "get",
        "value",
        "function",
        "return",
        "code",
        "file",
        "line",
        "number",
        "name",
        "data",
        "type",
        "example",
        "hello",
        "world",
        "answer",
        "question",
        "capital",
        "city",
        "france",
        "paris",
        "sentence",
        "here's",
        "it's",
        "i'm",
        "don't",
    }
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_ALLOWED_PUNCT = set(".,;:!?'\"()[]{}<>-_/\\*#`~@$%^&+=|\n\t ’“”—–…·•")


@dataclass(frozen=True)
class Coherence:
    ok: bool
    problems: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return "coherent" if self.ok else "; ".join(self.problems)


def _is_cjk(ch: str) -> bool:
    return (
        "CJK" in unicodedata.name(ch, "")
        or "\u3040" <= ch <= "\u30ff"
        or "\uac00" <= ch <= "\ud7af"
    )


def _odd(ch: str) -> bool:
    if ch.isalnum() or ch in _ALLOWED_PUNCT or ch.isspace():
        return False
    cat = unicodedata.category(ch)
    return cat[0] in "CZ" or ch == "\ufffd" or cat in ("So", "Sk", "Mn")


def _broken(ch: str) -> bool:
    """Characters language output never has: controls, undecodable bytes, private use."""
    if ch in "\n\t\r":
        return False
    return ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs")


def _loop_share(words: list[str]) -> tuple[float, str]:
    """Share of words covered by the most repeated n-gram (n = 1..8), and that n-gram."""
    best = (0.0, "")
    if len(words) < 8:
        return best
    for n in range(1, 9):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        gram, count = grams.most_common(1)[0]
        if count < 4:
            continue
        share = count * n / len(words)
        if n == 1 and gram[0] in COMMON:
            share = share if share > 0.5 else 0.0  # "the" is common; "the the the…" is not
        if share >= 0.5:
            return min(share, 1.0), " ".join(gram)  # the shortest unit that loops
        if share > best[0]:
            best = (share, " ".join(gram))
    return best


def check_coherence(text: str) -> Coherence:
    stripped = text.strip()
    if not stripped:
        return Coherence(False, ("empty reply",))
    problems: list[str] = []
    stats: dict[str, float] = {}
    chars = len(stripped)
    odd = sum(1 for ch in stripped if _odd(ch))
    stats["odd_char_share"] = odd / chars
    broken = sum(1 for ch in stripped if _broken(ch))
    if broken >= 3 or (chars >= 8 and odd / chars > 0.10):
        problems.append(f"gibberish: {max(odd, broken)} control/undecodable/odd characters")
    run = re.search(r"(.)\1{24,}", stripped, re.S)
    if run:
        problems.append(f"repetition loop: {run.group(1)!r} repeated {len(run.group(0))} times")
    words = [w.lower() for w in _WORD.findall(stripped)]
    if not words and not any(ch.isalpha() for ch in stripped):
        problems.append("gibberish: no words at all")
    cjk = sum(1 for ch in stripped if _is_cjk(ch))
    stats["words"] = len(words)
    share, gram = _loop_share(words)
    stats["loop_share"] = share
    if share >= 0.5:
        problems.append(f"repetition loop: {gram!r} fills {share:.0%} of the reply")
    if chars >= 200:
        ratio = len(zlib.compress(stripped.encode())) / len(stripped.encode())
        stats["compression"] = ratio
        if ratio < 0.12 and not any(p.startswith("repetition") for p in problems):
            problems.append(f"repetition loop: the reply compresses to {ratio:.0%}")
    lines = [ln.strip() for ln in stripped.splitlines() if ln.strip()]
    if len(lines) >= 6:
        line, count = Counter(lines).most_common(1)[0]
        if count / len(lines) >= 0.5 and not any(p.startswith("repetition") for p in problems):
            problems.append(f"repetition loop: the line {line[:40]!r} repeats {count} times")
    if cjk / chars < 0.3 and len(words) >= 4:
        common = sum(1 for w in words if w in COMMON) / len(words)
        stats["common_word_share"] = common
        vowelless = sum(1 for w in words if len(w) > 3 and not re.search(r"[aeiouy]", w)) / len(
            words
        )
        stats["vowelless_share"] = vowelless
        long_words = sum(1 for w in words if len(w) > 20) / len(words)
        if common < 0.04 and len(words) >= 8:
            problems.append(f"gibberish: only {common:.0%} common words")
        elif vowelless > 0.3:
            problems.append(f"gibberish: {vowelless:.0%} of words have no vowels")
        elif long_words > 0.2:
            problems.append("gibberish: run-together words")
    return Coherence(not problems, tuple(problems), stats)
