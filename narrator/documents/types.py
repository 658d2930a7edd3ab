"""What a reader hands the rest of narrator: a :class:`Book` of :class:`Chapter` s, and the limits it read within."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ChapterKind = Literal["body", "front", "back"]


@dataclass(frozen=True)
class Chapter:
    """One chapter to speak. ``text`` is plain text: paragraphs separated by one blank line, no markup,
    never empty. The title is not repeated at the start of the text (the pipeline may speak it first)."""

    title: str
    text: str
    kind: ChapterKind = "body"
    words: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # A field, not a property: it travels with dataclasses.asdict() into chapter listings.
        object.__setattr__(self, "words", len(self.text.split()))


@dataclass(frozen=True)
class Book:
    title: str
    author: str
    language: str | None
    cover: bytes | None
    cover_type: str | None
    """The cover's media type, e.g. ``image/jpeg``; None when there is no cover."""
    chapters: tuple[Chapter, ...]
    """In reading order; front and back matter only when read with ``keep_matter``."""

    @property
    def words(self) -> int:
        return sum(c.words for c in self.chapters)


@dataclass(frozen=True)
class DocumentLimits:
    max_bytes: int = 200 * 1024 * 1024
    """The document itself: refused before any parsing."""
    max_unpacked: int = 1024 * 1024 * 1024
    """All archive members together, declared and actually read (zip bombs)."""
    max_members: int = 10_000
    max_ratio: float = 200.0
    """A member inflating more than this many times its compressed size is refused (text deflates 3 to 10 times)."""
