"""Paragraphs with headings (an HTML page, rendered Markdown) into chapters: each chapter heading starts one.

Chapter headings: ``<h1>`` and ``<h2>``; but a lone ``<h1>`` that is the very first thing on a page that has
``<h2>`` s is the book's title, and its ``<h2>`` s are the chapters. With ``headings`` a regular expression, a
heading of any level whose text it matches (at its start) starts a chapter; with "none" the document is one
chapter. Text before the first chapter heading is a chapter titled with the document's title.
"""

from __future__ import annotations

import re

from .titles import speakable
from .types import Chapter
from .xhtml import Block


def chapter_levels(blocks: list[Block]) -> tuple[set[int], bool]:
    """(the heading levels that start chapters, whether the first block is the book's title)."""
    levels = [b.heading for b in blocks if b.heading]
    lone_top = bool(blocks) and blocks[0].heading == 1 and levels.count(1) == 1 and 2 in levels
    return ({2}, True) if lone_top else ({1, 2}, False)


def headed_chapters(blocks: list[Block], title: str, pattern: re.Pattern[str] | None, one: bool) -> list[Chapter]:
    if one or not blocks:
        text = speakable(blocks)
        return [Chapter(title, text)] if text else []
    if pattern is not None:
        starts = [i for i, b in enumerate(blocks) if b.heading and pattern.match(b.text)]
        skip_first = False
    else:
        levels, skip_first = chapter_levels(blocks)
        starts = [i for i, b in enumerate(blocks) if b.heading in levels]
    chapters = []
    intro = blocks[1 if skip_first else 0 : starts[0] if starts else len(blocks)]
    if intro:
        chapters.append(Chapter(title, speakable(intro)))
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(blocks)
        heading = " ".join(blocks[start].text.split())
        text = speakable(blocks[start + 1 : end])
        chapters.append(Chapter(heading, text or heading))
    return chapters
