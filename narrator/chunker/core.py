"""First chunker: sentences packed into chunks of at most ``max_chars``.

Paragraphs (blank lines) are hard boundaries. Every chunk keeps its span in the
input, so joining ``text[c.start:c.end]`` gives back the text up to whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Boundary(StrEnum):
    """What follows a chunk: it decides the pause after it."""

    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    END = "end"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int
    boundary: Boundary


_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]’”]*\s+")
_WORD_GAP = re.compile(r"\s+")


def chunk_text(text: str, max_chars: int) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_chars`` (a longer single word stands alone)."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    spans: list[tuple[int, int, Boundary]] = []
    for p_start, p_end in _paragraphs(text):
        pieces = list(_pack(text, _sentences(text, p_start, p_end), max_chars))
        for i, (s, e) in enumerate(pieces):
            spans.append((s, e, Boundary.PARAGRAPH if i == len(pieces) - 1 else Boundary.SENTENCE))
    chunks = [Chunk(i, text[s:e], s, e, b) for i, (s, e, b) in enumerate(spans)]
    if chunks:
        last = chunks[-1]
        chunks[-1] = Chunk(last.index, last.text, last.start, last.end, Boundary.END)
    return chunks


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraphs(text: str) -> list[tuple[int, int]]:
    out = []
    pos = 0
    for m in _PARAGRAPH.finditer(text):
        out.append(_trimmed(text, pos, m.start()))
        pos = m.end()
    out.append(_trimmed(text, pos, len(text)))
    return [(s, e) for s, e in out if e > s]


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        out.append(_trimmed(text, pos, m.start()))
        pos = m.end()
    out.append(_trimmed(text, pos, end))
    return [(s, e) for s, e in out if e > s]


def _words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    pos = start
    for m in _WORD_GAP.finditer(text, start, end):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if end > pos:
        out.append((pos, end))
    return out


def _pack(text: str, units: list[tuple[int, int]], max_chars: int):  # type: ignore[no-untyped-def]
    """Greedily join adjacent units while the span stays within ``max_chars``."""
    cur: tuple[int, int] | None = None
    for s, e in units:
        if e - s > max_chars:
            if cur:
                yield cur
                cur = None
            # A sentence longer than a chunk: fall back to words.
            yield from _pack(text, _words(text, s, e), max_chars) if len(_words(text, s, e)) > 1 else [(s, e)]
            continue
        if cur and e - cur[0] <= max_chars:
            cur = (cur[0], e)
        else:
            if cur:
                yield cur
            cur = (s, e)
    if cur:
        yield cur
