"""Front and back matter: which parts of an EPUB are not the book's reading text.

Matter, most certain first: an epub:type or role (cover, titlepage, copyright-page, toc, frontmatter, backmatter,
acknowledgments, index, …), a landmark or guide reference of those types, a spine item that is not linear, the
navigation document itself. A chapter-like type (bodymatter, chapter, part, …) then says body. Weaker: a file
named like matter (cover, copyright, toc, …) that is short, a page that shows the cover image and little else,
a page mostly made of links (a printed table of contents). Last, a short page (under FEW_WORDS words) before the first
real chapter is matter (a title page, a dedication, an epigraph) unless its title reads as a chapter's.
Matter before the first body chapter is front matter, after it back matter.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from .headings import chapter_like
from .titles import titled
from .xhtml import Block, Page

FEW_WORDS = 60
_SHORT_FILE = 500  # a file named "copyright" longer than this is something else
MATTER_TYPES = frozenset({
    "cover", "titlepage", "title-page", "halftitlepage", "copyright-page", "toc", "doc-toc", "frontmatter",
    "backmatter", "acknowledgments", "acknowledgements", "doc-acknowledgments", "index", "doc-index", "colophon",
    "doc-colophon", "loi", "lot", "landmarks", "dedication", "doc-dedication", "imprint", "seriespage",
    "bibliography", "doc-bibliography", "glossary", "doc-glossary", "notes", "endnotes", "rearnotes", "footnotes",
    "doc-endnotes", "other-credits", "errata", "doc-errata",
})  # fmt: skip
BODY_TYPES = frozenset({"bodymatter", "chapter", "doc-chapter", "part", "doc-part", "prologue", "doc-prologue",
                        "epilogue", "doc-epilogue", "volume", "division"})  # fmt: skip
_MATTER_NAME = re.compile(r"(?:^|[-_. ])(?:cover|coverpage|copyright|toc|contents|titlepage|title|halftitle"
                          r"|colophon|imprint|dedication|frontmatter|backmatter|nav)(?:$|[-_. \d])", re.IGNORECASE)


@dataclass
class Piece:
    """A chapter candidate: a spine file, or part of one split at the navigation's anchors."""

    path: str
    blocks: list[Block]
    page: Page
    types: frozenset[str]
    landmarks: frozenset[str]
    linear: bool
    title: str = ""
    in_nav: bool = False
    start: int = 0
    """The index of its first block in the page."""

    @property
    def words(self) -> int:
        return sum(len(b.text.split()) for b in self.blocks)


def strong_matter(piece: Piece, special: set[str], cover: str | None) -> bool | None:
    """True: matter; False: body; None: undecided (the short-page rule decides)."""
    if (piece.types | piece.landmarks) & MATTER_TYPES or not piece.linear or piece.path in special:
        return True
    if piece.types & BODY_TYPES or piece.landmarks & {"bodymatter", "text", "start"}:
        return False
    words = piece.words
    stem = posixpath.splitext(posixpath.basename(piece.path))[0]
    if _MATTER_NAME.search(stem) and words < _SHORT_FILE:
        return True
    if cover and cover in piece.page.images and words < FEW_WORDS:
        return True
    if words and sum(b.link_words for b in piece.blocks) >= max(3, 0.5 * words) and len(piece.blocks) >= 3:
        return True  # a printed table of contents
    return None


def classify(pieces: list[Piece], special: set[str], cover: str | None) -> list[str]:
    """Each piece's kind: body, front or back."""
    verdicts = [strong_matter(p, special, cover) for p in pieces]
    first = next((i for i, (p, v) in enumerate(zip(pieces, verdicts, strict=True)) if v is False or (
        v is None and (p.words >= FEW_WORDS or chapter_like(titled(p.blocks, p.title)[0])))), None)  # fmt: skip
    kinds = []
    for i, verdict in enumerate(verdicts):
        short_front = verdict is None and first is not None and i < first
        if verdict is True or short_front:
            kinds.append("front" if first is None or i < first else "back")
        else:
            kinds.append("body")
    return kinds
