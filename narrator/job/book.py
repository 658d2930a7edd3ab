"""A ``document`` request as a book: its bytes found, read (narrator.documents), and laid out as text.

The book's text is its chapters one after another, each opening with its title (unless the
request says ``book.speak_titles: false``); admission chunks every chapter on its own, so no
chunk spans two chapters, and the pause before a chapter is the request's ``chapter_pause_ms``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from ..documents import Book, DocumentLimits, chapter_numbers, read_document
from ..errors import InvalidRequest, ObjectNotFound
from ..request import JobRequest
from ..settings import Settings
from ..storage import ObjectStore
from .fetch import fetch
from .inline import inline_bytes

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
    book, numbers = read_book(data, name=_name(request.document), kind=request.document_format,
                              keep_matter=request.book.keep_matter, headings=request.book.headings,
                              chapters=request.chapters, max_bytes=settings.max_document_bytes)
    return _laid_out(book, numbers, request.book.speak_titles)


def read_book(data: bytes, *, name: str, kind: str | None = None, keep_matter: bool = False,
              headings: str | None = None, chapters: str | None = None, max_bytes: int) -> tuple[Book, list[int]]:
    """The book in ``data`` cut to the ``chapters`` picked (all when None), and their 1-based numbers
    in the whole book: what a job speaks and what ``narrator chunk`` lists, read the same way."""
    book = read_document(data, name=name, kind=kind, keep_matter=keep_matter,
                         limits=DocumentLimits(max_bytes=max_bytes), headings=headings)
    picked = chapter_numbers(chapters, len(book.chapters)) if chapters else range(len(book.chapters))
    return replace(book, chapters=tuple(book.chapters[i] for i in picked)), [i + 1 for i in picked]


def document_bytes(value: str, settings: Settings, store: ObjectStore | None) -> bytes:
    """``document`` as bytes: fetched (a URL, under the fetch policy), read (``store:KEY``), or decoded."""
    if _URL.match(value):
        return fetch(value, field=FIELD, allow=settings.fetch_allow, max_bytes=settings.max_document_bytes,
                     connect_timeout=min(10.0, settings.fetch_timeout), total_timeout=settings.fetch_timeout)
    if value.startswith(_STORED):
        return _stored(value.removeprefix(_STORED), settings, store)
    return inline_bytes(value, field=FIELD, max_bytes=settings.max_document_bytes, what="the document",
                        hint=" (a document is base64, an http(s) URL, or store:KEY)")


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
