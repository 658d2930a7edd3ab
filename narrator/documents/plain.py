"""Plain text into chapters at its chapter headings, found conservatively: a false break is worse than a missed one.

A heading starts a paragraph (after a blank line) and is a whole line: "Chapter 1", "CHAPTER ONE", "Chapter XII.
The Storm", "Part II", "PROLOGUE", "BOOK THE FIRST" (see :mod:`.headings`); a short title line right after it
("CHAPTER I." then "Down the Rabbit-Hole") joins its title. Where a text has fewer than two numbered headings,
a short title line standing alone (at most 8 words, Title Case, no closing punctuation, no quotes) is one too,
but only with at least ``LONG`` words on each side. ``headings``: a regular expression a heading line must match
(at its start) instead; "none": one chapter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .headings import NUMBERED, chapter_like
from .titles import join_titles
from .types import Chapter

LONG = 1000
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_SMALL = frozenset("a an and as at but by de for from in into nor of on or the to von with".split())
_QUOTES = "\"“”‘’'«»„"
_PG_START = re.compile(r"^\*\*\* ?START OF TH(?:E|IS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)
_PG_END = re.compile(r"^\*\*\* ?END OF TH(?:E|IS) PROJECT GUTENBERG EBOOK", re.MULTILINE | re.IGNORECASE)
_LINE_MAX = 200  # a user's pattern runs on lines no longer than this (and a heading is shorter)


@dataclass
class _Para:
    lines: list[str]

    @property
    def words(self) -> int:
        return sum(len(line.split()) for line in self.lines)


def title_like(line: str, final_stop: bool = False) -> bool:
    """A short Title Case line that is no sentence and no dialogue."""
    words = line.split()
    if not 1 <= len(words) <= 8 or len(line) > 60 or any(q in line for q in _QUOTES):
        return False
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    if line[-1] in ".,;:!?…)-—–" and not (final_stop and line[-1] == "." and line[-2:-1].isalnum()):
        return False
    return all(w[0].isupper() or w[0].isdigit() or w.lower() in _SMALL for w in words)


def paragraphs(text: str) -> list[_Para]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for raw in _PARAGRAPH.split(text):
        lines = [" ".join(line.split()) for line in raw.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            out.append(_Para(lines))
    return out


def _heads(paras: list[_Para], pattern: re.Pattern[str] | None) -> dict[int, str]:
    """Paragraph index -> heading line, for paragraphs that start with a heading."""
    if pattern is not None:
        return {i: p.lines[0] for i, p in enumerate(paras) if len(p.lines[0]) <= _LINE_MAX and pattern.match(
            p.lines[0])}  # fmt: skip
    heads = {i: p.lines[0] for i, p in enumerate(paras) if chapter_like(p.lines[0])}
    if sum(bool(NUMBERED.fullmatch(h)) for h in heads.values()) < 2:
        heads.update(_title_lines(paras, heads))
    return heads


def _title_lines(paras: list[_Para], strong: dict[int, str]) -> dict[int, str]:
    """Lone short title lines with LONG words of text on each side, from the previous heading to the next."""
    candidates = sorted({i for i, p in enumerate(paras) if len(p.lines) == 1 and title_like(p.lines[0])} | set(strong))
    words = [0]
    for p in paras:
        words.append(words[-1] + p.words)
    found: dict[int, str] = {}
    last = 0
    for n, i in enumerate(candidates):
        nxt = candidates[n + 1] if n + 1 < len(candidates) else len(paras)
        if i in strong:
            last = i + 1
            continue
        if words[i] - words[last] >= LONG and words[nxt] - words[i + 1] >= LONG:
            found[i] = paras[i].lines[0]
            last = i + 1
    return found if len(found) >= 2 else {}


def without_licence(text: str) -> str:
    """A Project Gutenberg text without the licence around it: between its START and END marker lines."""
    start = _PG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _PG_END.search(text)
    return text[: end.start()] if end else text


def plain_chapters(text: str, title: str, pattern: re.Pattern[str] | None, one: bool) -> list[Chapter]:
    paras = paragraphs(without_licence(text))
    heads = {} if one else _heads(paras, pattern)
    chapters: list[Chapter] = []
    current_title, body, started = title, [], False
    i = 0
    while i < len(paras):
        if i not in heads:
            body.append("\n".join(paras[i].lines))
            i += 1
            continue
        if body or started:  # a heading with nothing under it ("PART ONE") is a chapter that says itself
            chapters.append(Chapter(current_title, "\n\n".join(body) or current_title))
        current_title, rest, i = _heading(paras, i, heads, pattern is None)
        body, started = ([rest] if rest else []), True
    if body or started:
        chapters.append(Chapter(current_title, "\n\n".join(body) or current_title))
    return chapters


def _heading(paras: list[_Para], i: int, heads: dict[int, str], join_next: bool) -> tuple[str, str, int]:
    """(title, the rest of the heading's paragraph, the next paragraph to read)."""
    lines = paras[i].lines
    if len(lines) == 2 and join_next and title_like(lines[1], final_stop=True):
        return join_titles([lines[0], lines[1]]), "", i + 1
    rest = "\n".join(lines[1:])
    nxt = paras[i + 1] if i + 1 < len(paras) else None
    if join_next and not rest and nxt and len(nxt.lines) == 1 and i + 1 not in heads and title_like(
            nxt.lines[0], final_stop=True) and NUMBERED.fullmatch(lines[0]):  # fmt: skip
        return join_titles([lines[0], nxt.lines[0]]), "", i + 2
    return lines[0], rest, i + 1
