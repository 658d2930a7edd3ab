"""Markdown into a :class:`Book` with markdown-it-py (CommonMark): rendered to HTML, then read as HTML.

Links are read as their text and emphasis loses its markers (the HTML reader sees only text); fenced and
indented code blocks are dropped before rendering: code read aloud is noise, not a chapter.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from .decode import decode
from .headed import chapter_levels, headed_chapters
from .types import Book
from .xhtml import extract

_DROPPED = frozenset({"fence", "code_block"})


def render(source: str) -> str:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = [t for t in md.parse(source) if t.type not in _DROPPED]
    html: str = md.renderer.render(tokens, md.options, {})
    return html


def read_markdown(data: bytes, title: str, pattern: re.Pattern[str] | None, one: bool) -> Book:
    page = extract(render(decode(data, markup=False)))
    book_title = title
    if page.blocks and chapter_levels(page.blocks)[1]:
        book_title = page.blocks[0].text  # a lone "# Title" over "## Chapter" headings names the book
    chapters = headed_chapters(page.blocks, book_title, pattern, one)
    return Book(book_title, "", None, None, None, tuple(chapters))
