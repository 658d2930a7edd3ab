"""``select_chapters``: a book cut down to the chapters a spec like "3-5" or "1,4,7-9" names (1-based)."""

from __future__ import annotations

import dataclasses
import re

from ..errors import InvalidRequest
from .types import Book

_PART = re.compile(r"(\d+)(?:\s*-\s*(\d*))?")


def chapter_numbers(spec: str, count: int) -> list[int]:
    """The 0-based indices ``spec`` names, in reading order; "7-" runs to the last chapter."""
    chosen: set[int] = set()
    for part in spec.split(","):
        found = _PART.fullmatch(part.strip())
        if not found:
            raise InvalidRequest(f"{spec!r} is not a chapter list like 3-5 or 1,4,7-9", field="chapters")
        first = int(found.group(1))
        last = first if found.group(2) is None else int(found.group(2) or count)
        if first < 1 or last < first:
            raise InvalidRequest(f"{part.strip()!r} is not a range of chapters (they count from 1)", field="chapters")
        if last > count:
            raise InvalidRequest(f"chapter {last} is out of range: the book has {count} chapters", field="chapters")
        chosen.update(range(first - 1, last))
    return sorted(chosen)


def select_chapters(book: Book, spec: str) -> Book:
    picked = chapter_numbers(spec, len(book.chapters))
    return dataclasses.replace(book, chapters=tuple(book.chapters[i] for i in picked))
