"""Plain text into blocks: paragraphs (blank lines), headings, list items.

Inside a paragraph, hard-wrapped lines join into one block; a heading line or a list
item starts its own. Bullets, markdown ``#`` marks and rule lines stay in the spans
but are not spoken.
"""

from __future__ import annotations

import re

from .chunk import Boundary
from .doc import Block
from .sentences import CLOSERS

Override = tuple[int, int, str]

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_SPEAKABLE = re.compile(r"[^\W_]")
_MD_HEADING = re.compile(r"#{1,6}(?=\s)")
_BULLET = re.compile(r"[-*+•◦▪‣●○■□➢►–—](?=\s)")
_NUMBERED = re.compile(r"(?:\d{1,3}|[a-z])[.)](?=\s)|[A-Za-z]\)(?=\s)")
_TAIL = r"\s*(?:[.:\-—–]\s*(?:\S.*)?)?$"
_HEADING_WORDS = re.compile(
    r"(?:chapter|part|book|volume|section|act|scene|canto|letter|episode)\s+(?:\d+|[ivxlcdm]+|[a-z]+(?:-[a-z]+)?)\b"
    + _TAIL,
    re.IGNORECASE,
)
_HEADING_ALONE = re.compile(
    r"(?:prologue|epilogue|preface|foreword|introduction|afterword|appendix|interlude|contents|acknowledge?ments"
    r"|the end)\b" + _TAIL,
    re.IGNORECASE,
)
_NUMERAL = re.compile(r"(?:[IVXLCDM]+|\d{1,4})\.?")
_END_PUNCT = ".!?…。！？,;:"


def plain_blocks(text: str, start: int, end: int, overrides: list[Override]) -> list[Block]:
    """Blocks for ``text[start:end]``; markup that is not spoken goes into ``overrides``."""
    blocks: list[Block] = []
    for ps, pe in paragraphs(text, start, end):
        blocks.extend(_paragraph(text, ps, pe, overrides))
        last = blocks[-1]
        last.after = Boundary.HEADING if last.heading else Boundary.PARAGRAPH
    return blocks


def paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    for m in _PARAGRAPH.finditer(text, start, end):
        out.append(_trim(text, pos, m.start()))
        pos = m.end()
    out.append(_trim(text, pos, end))
    return [(s, e) for s, e in out if e > s]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    while True:
        nl = text.find("\n", pos, end)
        s, e = _trim(text, pos, end if nl < 0 else nl)
        if e > s:
            out.append((s, e))
        if nl < 0:
            return out
        pos = nl + 1


def _paragraph(text: str, start: int, end: int, overrides: list[Override]) -> list[Block]:
    lines = _lines(text, start, end)
    single = len(lines) == 1
    out: list[Block] = []
    cur: Block | None = None
    cur_kind = ""
    for ls, le in lines:
        kind, markup_end = classify(text[ls:le], single)
        if kind == "rule":
            overrides.append((ls, le, ""))
            if cur is None:
                cur, cur_kind = Block(ls, le, after=Boundary.SENTENCE), "prose"
                out.append(cur)
            else:
                cur.end = le
            continue
        if markup_end > 0:
            overrides.append((ls, ls + markup_end, ""))
        elif markup_end < 0:
            # "1." and "a)" are read as "one," and "a,": the number stays, the mark becomes a pause.
            overrides.append((ls - markup_end - 1, ls - markup_end, ","))
        if (
            kind == "prose"
            and cur is not None
            and (cur_kind == "prose" or (cur_kind == "item" and _continues(text, ls)))
        ):
            cur.end = le
            continue
        heading = kind == "heading"
        cur = Block(ls, le, after=Boundary.HEADING if heading else Boundary.SENTENCE, heading=heading)
        cur_kind = kind
        out.append(cur)
    return out


def _continues(text: str, line_start: int) -> bool:
    """A line after a list item continues it when indented or starting in lower case."""
    return text[line_start].islower() or text[line_start - 1] in " \t"


def classify(line: str, single: bool) -> tuple[str, int]:
    """The kind of a trimmed line (rule, heading, item, prose) and its leading markup: n > 0 characters
    to drop (bullets, ``#``), or -n for a list number whose n-th character is its closing mark."""
    if not _SPEAKABLE.search(line):
        return "rule", 0
    m = _MD_HEADING.match(line)
    if m:
        return "heading", m.end()
    m = _BULLET.match(line)
    if m:
        return "item", m.end()
    m = _NUMBERED.match(line)
    if m and not is_heading(line, single):
        return "item", -m.end()
    if is_heading(line, single):
        return "heading", 0
    return "prose", 0


def is_heading(line: str, single: bool) -> bool:
    """A short line without closing punctuation that reads as a title: "CHAPTER IV", "Chapter 3: The Storm"."""
    if len(line) > 100 or line[0].islower():
        return False
    if _HEADING_WORDS.match(line) or _HEADING_ALONE.match(line) or _NUMERAL.fullmatch(line):
        return True
    core = line.rstrip(CLOSERS)
    if not core or core[-1] in _END_PUNCT:
        return False
    n_words = len(line.split())
    if n_words > 12:
        return False
    if line.upper() == line and sum(c.isupper() for c in line) >= 2:
        return True
    return single and n_words <= 10
