"""An HTML page into a :class:`Book`: ``<title>`` is the book's title, ``<html lang>`` its language."""

from __future__ import annotations

import re

from .decode import decode
from .headed import chapter_levels, headed_chapters
from .types import Book
from .xhtml import extract


def read_html(data: bytes, title: str, pattern: re.Pattern[str] | None, one: bool) -> Book:
    page = extract(decode(data))
    if not page.title and page.blocks and chapter_levels(page.blocks)[1]:
        page.title = page.blocks[0].text  # the lone <h1> is the book's title
    book_title = page.title or title
    chapters = headed_chapters(page.blocks, book_title, pattern, one)
    return Book(book_title, "", page.lang, None, None, tuple(chapters))
