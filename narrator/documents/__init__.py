"""Documents into books: EPUB 2/3, HTML, Markdown and plain text read into chapters to speak.

Pure: no Celery, no storage, no network. Archives are read in memory within :class:`DocumentLimits`; every
document that cannot be read is an :class:`~narrator.errors.InvalidRequest` on the ``document`` field.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re

from ..errors import InvalidRequest
from .decode import decode
from .epub import read_epub
from .html import read_html
from .markdown import read_markdown
from .plain import plain_chapters
from .refuse import refused
from .select import chapter_numbers, select_chapters
from .sniff import EXTENSIONS, KINDS, sniff
from .types import Book, Chapter, ChapterKind, DocumentLimits

__all__ = [
    "EXTENSIONS", "KINDS", "Book", "Chapter", "ChapterKind", "DocumentLimits", "chapter_numbers", "read_document",
    "select_chapters",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # what a JobRequest's text refuses


def read_document(
    data: bytes,
    *,
    name: str = "",
    kind: str | None = None,
    keep_matter: bool = False,
    limits: DocumentLimits = DocumentLimits(),  # noqa: B008 - frozen: one shared default is safe
    headings: str | None = None,
) -> Book:
    """The book in ``data``. ``kind``: epub, html, markdown or text (None: sniffed from the bytes and ``name``).
    ``headings`` (HTML, Markdown, text): a regular expression a heading must match to start a chapter, or
    "none" for one chapter."""
    if len(data) > limits.max_bytes:
        raise refused(name, f"is {len(data)} bytes, more than the {limits.max_bytes} allowed")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", field="document")
    kind = kind or sniff(data, name)
    if kind == "epub":
        book = read_epub(data, name, keep_matter, limits)
    else:
        book = _read_flat(data, name, kind, headings)
    return _clean(book, name)


def _read_flat(data: bytes, name: str, kind: str, headings: str | None) -> Book:
    one = (headings or "").strip().lower() == "none"
    pattern = _pattern(headings) if headings and not one else None
    title = posixpath.splitext(posixpath.basename(name))[0]
    if kind == "html":
        return read_html(data, title, pattern, one)
    if kind == "markdown":
        return read_markdown(data, title, pattern, one)
    chapters = plain_chapters(decode(data, markup=False), title, pattern, one)
    return Book(title, "", None, None, None, tuple(chapters))


def _pattern(headings: str) -> re.Pattern[str]:
    try:
        return re.compile(headings)
    except re.error as exc:
        raise InvalidRequest(f"{headings!r} is not a regular expression ({exc})", field="headings") from None


def _clean(book: Book, name: str) -> Book:
    """Control characters out (a request's text may not carry them); a book with nothing to say refused."""
    chapters = []
    for chapter in book.chapters:
        text = _CONTROL.sub("", chapter.text).strip()
        title = " ".join(_CONTROL.sub("", chapter.title).split())
        if text:
            chapters.append(Chapter(title, text, chapter.kind))
    if not any(c.words for c in chapters):
        raise refused(name, "has no text to speak")
    return dataclasses.replace(book, title=" ".join(book.title.split()), chapters=tuple(chapters))
