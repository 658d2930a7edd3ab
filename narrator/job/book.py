"""A ``document`` request as a book: its bytes found, read (narrator.documents), and laid out as text.

The book's text is its chapters one after another, each opening with its title (unless the
request says ``book.speak_titles: false``); admission chunks every chapter on its own, so no
chunk spans two chapters, and the pause before a chapter is the request's ``chapter_pause_ms``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass

from ..documents import Book, DocumentLimits, read_document, select_chapters
from ..errors import InvalidRequest, ObjectNotFound
from ..request import JobRequest
from ..settings import Settings
from ..storage import ObjectStore
from .fetch import fetch

log = logging.getLogger(__name__)

FIELD = "document"
_URL = re.compile(r"^https?://", re.IGNORECASE)
_STORED = "store:"


@dataclass(frozen=True)
class ChapterPlan:
    title: str
    number: int
    """1-based, in the whole book (as ``narrator chunk`` lists them): kept when ``chapters`` picks some."""
    text: str
    """What is spoken for it: its title (when spoken) and its text."""
    words: int


@dataclass(frozen=True)
class BookPlan:
    title: str
    author: str
    language: str | None
    cover: bytes | None
    cover_type: str | None
    chapters: tuple[ChapterPlan, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(c.text for c in self.chapters)


def plan_book(request: JobRequest, settings: Settings, store: ObjectStore | None = None) -> BookPlan:
    """The request's document, read and laid out; InvalidRequest names ``document`` or ``chapters``."""
    assert request.document is not None
    data = document_bytes(request.document, settings, store)
    limits = DocumentLimits(max_bytes=settings.max_document_bytes)
    book = read_document(data, name=_name(request.document), kind=request.document_format,
                         keep_matter=request.book.keep_matter, limits=limits, headings=request.book.headings)
    numbers = list(range(1, len(book.chapters) + 1))
    if request.chapters:
        chosen = select_chapters(book, request.chapters)
        numbers = [book.chapters.index(c) + 1 for c in chosen.chapters]
        book = chosen
    return _laid_out(book, numbers, request.book.speak_titles)


def document_bytes(value: str, settings: Settings, store: ObjectStore | None) -> bytes:
    """``document`` as bytes: fetched (a URL, under the fetch policy), read (``store:KEY``), or decoded."""
    if _URL.match(value):
        return fetch(value, field=FIELD, allow=settings.fetch_allow, max_bytes=settings.max_document_bytes,
                     connect_timeout=min(10.0, settings.fetch_timeout), total_timeout=settings.fetch_timeout)
    if value.startswith(_STORED):
        return _stored(value.removeprefix(_STORED), settings, store)
    return _decoded(value, settings.max_document_bytes)


def _stored(key: str, settings: Settings, store: ObjectStore | None) -> bytes:
    if store is None:
        from ..storage import open_store

        store = open_store(settings)
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise InvalidRequest(f"store:{key} is not an object key", field=FIELD)
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        raise InvalidRequest(f"no object {key!r} in storage (NARRATOR_STORAGE_URL)", field=FIELD) from None
    if len(data) > settings.max_document_bytes:
        raise InvalidRequest(f"is larger than {settings.max_document_bytes} bytes", field=FIELD)
    return data


def _decoded(value: str, max_bytes: int) -> bytes:
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if len(value) > max_bytes * 4 // 3 + 4:  # base64 is 4 characters per 3 bytes: cap before decoding
        raise InvalidRequest(f"is larger than {max_bytes} bytes", field=FIELD)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("is not valid base64 (a document is base64, an http(s) URL, or store:KEY)",
                             field=FIELD) from None
    if not data:
        raise InvalidRequest("decodes to nothing", field=FIELD)
    return data


def _name(value: str) -> str:
    """A file name to tell the format by, when the value has one (a URL's path, a stored key)."""
    if _URL.match(value) or value.startswith(_STORED):
        return value.split("?")[0].rsplit("/", 1)[-1]
    return ""


def _laid_out(book: Book, numbers: list[int], speak_titles: bool) -> BookPlan:
    chapters = []
    for number, chapter in zip(numbers, book.chapters, strict=True):
        title = chapter.title.strip()
        # A chapter that is only its title (a "Part Two" page) has the title as its text: said once.
        said_already = chapter.text.strip() == title
        spoken = f"{title}.\n\n{chapter.text}" if speak_titles and title and not said_already else chapter.text
        chapters.append(ChapterPlan(title=title, number=number, text=spoken, words=chapter.words))
    return BookPlan(title=book.title, author=book.author, language=book.language, cover=book.cover,
                    cover_type=book.cover_type, chapters=tuple(chapters))
