"""Where sentences end, and where to cut one that is too long: clauses, then words, then characters.

Every function takes the text and a ``[start, end)`` range and returns spans trimmed of
whitespace, in order, covering every non-space character of the range. ``protected`` holds
sorted ``(a, b)`` ranges nothing may cut inside (SSML ``<sub>`` and ``<say-as>``).

Segmentation errs towards not ending a sentence: a missed end only makes a sentence
longer, while a false end ("Dr. | Smith") would let a chunk cut there.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence

from .tables import ABBREVIATIONS, NEVER_END, TITLES, UNIT_ABBREVIATIONS

Span = tuple[int, int]
Protected = Sequence[tuple[int, int]]

# Scripts written without spaces between words: CJK ideographs, kana, fullwidth forms, Thai, Lao, Khmer, Myanmar.
NO_SPACE_CHARS = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\u0e00-\u0eff\u1780-\u17ff\u1000-\u109f"
)
CJK_CHARS = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\uac00-\ud7af"
NO_SPACE = re.compile(f"[{NO_SPACE_CHARS}]")
CJK = re.compile(f"[{CJK_CHARS}]")

OPENERS = "\"'“‘([{«¿¡「『（【"
CLOSERS = "\"'”’)]}»」』）】〕〉》"
_MAYBE_END = frozenset(ABBREVIATIONS) | UNIT_ABBREVIATIONS
_DOTTED_END = frozenset({"a.m", "p.m"})

_END = re.compile(
    rf"(?P<cjk>[。！？]+[!?！？。]*)[{re.escape(CLOSERS)}]*"
    rf"|(?P<mark>[.!?…]+)[{re.escape(CLOSERS)}]*(?=\s|\Z|[{CJK_CHARS}])"
)
_CLAUSE = re.compile(rf"[,;:]+[{re.escape(CLOSERS)}]*(?=\s)|[—–]+|\s-\s|[，；：、]")
_GAP = re.compile(r"\s+")


def trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def is_protected(protected: Protected, pos: int) -> bool:
    """Whether ``pos`` falls strictly inside a protected range."""
    if not protected:
        return False
    i = bisect_right(protected, (pos, 1 << 62)) - 1
    return i >= 0 and protected[i][0] < pos < protected[i][1]


def sentences(text: str, start: int, end: int, protected: Protected = ()) -> list[Span]:
    return _cut(text, start, end, [m.end() for m in _END.finditer(text, start, end) if _ends(text, m, start, end)],
                protected)  # fmt: skip


def clauses(text: str, start: int, end: int, protected: Protected = ()) -> list[Span]:
    return _cut(text, start, end, [m.end() for m in _CLAUSE.finditer(text, start, end)], protected)


def words(text: str, start: int, end: int, protected: Protected = ()) -> list[Span]:
    return _cut(text, start, end, [m.start() for m in _GAP.finditer(text, start, end)], protected)


def _cut(text: str, start: int, end: int, cuts: list[int], protected: Protected) -> list[Span]:
    out = []
    pos = start
    for cut in cuts:
        while cut < end and not _cluster_boundary(text, cut):
            cut += 1  # keep marks and joiners with the character before them
        if cut <= pos or is_protected(protected, cut):
            continue
        s, e = trim(text, pos, cut)
        if e > s:
            out.append((s, e))
        pos = cut
    s, e = trim(text, pos, end)
    if e > s:
        out.append((s, e))
    return out


def _next_char(text: str, pos: int, end: int) -> str:
    while pos < end and (text[pos].isspace() or text[pos] in OPENERS):
        pos += 1
    return text[pos] if pos < end else ""


def _token_before(text: str, pos: int, start: int) -> str:
    i = pos
    limit = max(start, pos - 40)
    while i > limit and not text[i - 1].isspace():
        i -= 1
    return text[i:pos].lstrip(OPENERS)


def _ends(text: str, m: re.Match[str], start: int, end: int) -> bool:
    if m["cjk"]:
        return True
    mark = m["mark"]
    nxt = _next_char(text, m.end(), end)
    if not nxt:
        return True
    if "!" in mark or "?" in mark:
        return not nxt.islower()  # '"Help!" she cried.' goes on
    if mark != ".":
        return nxt.isupper()  # an ellipsis ends a sentence only before a capital
    i = m.start()
    if i == start or text[i - 1].isspace():
        return False  # ". . ."
    token = _token_before(text, i, start)
    low = token.lower()
    if low in TITLES or low in NEVER_END:
        return False
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. R. R. Tolkien"
    if "." in token:
        if re.fullmatch(r"(?:[A-Za-z]{1,2}\.)+[A-Za-z]{1,2}", token):
            return low in _DOTTED_END and nxt.isupper()  # U.S. Army, Ph.D. student; "at 5 p.m. Then"
        return True
    if low in _MAYBE_END:
        return nxt.isupper()
    return True


def graphemes(text: str, start: int, end: int, max_chars: int) -> list[Span]:
    """Cut a run with no spaces into pieces of at most ``max_chars``, never inside a character cluster.

    Prefers to cut after CJK punctuation in the last third of a piece.
    """
    out = []
    pos = start
    while end - pos > max_chars:
        cut = pos + max_chars
        for back in range(cut, pos + max_chars * 2 // 3, -1):
            if text[back - 1] in "，、；：。！？」』）":
                cut = back
                break
        while cut > pos + 1 and not _cluster_boundary(text, cut):
            cut -= 1
        if not _cluster_boundary(text, cut):
            cut = pos + max_chars  # one cluster longer than a chunk stands alone, like a long word
            while cut < end and not _cluster_boundary(text, cut):
                cut += 1
        out.append((pos, cut))
        pos = cut
    if end > pos:
        out.append((pos, end))
    return out


def _cluster_boundary(text: str, i: int) -> bool:
    """Whether a cut before ``text[i]`` keeps every grapheme cluster whole (close enough for speech)."""
    if i <= 0 or i >= len(text):
        return True
    prev, cur = text[i - 1], text[i]
    if cur == "\u200d" or prev == "\u200d":
        return False
    if unicodedata.category(cur)[0] == "M" or "\ufe00" <= cur <= "\ufe0f" or "\U0001f3fb" <= cur <= "\U0001f3ff":
        return False
    if "\U000e0020" <= cur <= "\U000e007f" or cur == "\u20e3":
        return False
    if "\U0001f1e6" <= prev <= "\U0001f1ff" and "\U0001f1e6" <= cur <= "\U0001f1ff":
        # Regional indicators pair into flags: cut only after an even run.
        run = 0
        j = i - 1
        while j >= 0 and "\U0001f1e6" <= text[j] <= "\U0001f1ff":
            run += 1
            j -= 1
        return run % 2 == 0
    return not ("\udc00" <= cur <= "\udfff")
