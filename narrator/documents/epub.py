"""EPUB 2 and 3 into a :class:`Book`: spine order, navigation titles, matter left out, read in memory.

One chapter per spine file, except where the navigation points into one file at several anchors: the file is
then split there. A file the navigation does not name, with no heading of its own, continues the chapter before
it (converters split long chapters across files).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator

from .archive import Archive
from .decode import decode
from .drm import check_drm
from .matter import Piece, classify
from .opf import CONTAINER, Item, Package, read_package
from .refuse import refused
from .titles import join_titles, speakable, titled
from .toc import Entry, Navigation, read_navigation
from .types import Book, Chapter, ChapterKind, DocumentLimits
from .xhtml import Page, extract

log = logging.getLogger(__name__)
EPUB_MIMETYPE = b"application/epub+zip"
_CONTENT_TYPES = frozenset({"application/xhtml+xml", "text/html"})
_CONTENT_EXTENSIONS = frozenset({".xhtml", ".html", ".htm", ".xml"})


def read_epub(data: bytes, name: str, keep_matter: bool, limits: DocumentLimits) -> Book:
    archive = Archive(data, name, limits)
    if not archive.has(CONTAINER):
        if archive.has("mimetype") and archive.read("mimetype").strip() == EPUB_MIMETYPE:
            raise refused(name, f"is not a readable EPUB: {CONTAINER} is missing")
        raise refused(name, f"is a zip archive but not an EPUB (it has no {CONTAINER})")
    check_drm(archive)
    package = read_package(archive)
    nav = read_navigation(archive, package)
    pieces = list(_pieces(archive, package, nav))
    special = {i.path for i in (package.nav, package.ncx) if i is not None}
    cover = package.cover.path if package.cover else None
    kinds = classify(pieces, special, cover)
    chapters = assemble(pieces, kinds, keep_matter, bool(nav.entries))
    if not chapters:
        left = " (only front and back matter, which keep_matter reads)" if any(k != "body" for k in kinds) else ""
        raise refused(name, f"has no text to speak{left}")
    cover_bytes = archive.read(cover) if cover and archive.has(cover) else None
    return Book(
        title=package.title or _stem(name),
        author=" & ".join(package.authors),
        language=package.language,
        cover=cover_bytes,
        cover_type=package.cover.media_type if cover_bytes is not None and package.cover else None,
        chapters=tuple(chapters),
    )


def _stem(name: str) -> str:
    return posixpath.splitext(posixpath.basename(name))[0]


def _is_content(item: Item) -> bool:
    return item.media_type in _CONTENT_TYPES or posixpath.splitext(item.path)[1].lower() in _CONTENT_EXTENSIONS


def _pieces(archive: Archive, package: Package, nav: Navigation) -> Iterator[Piece]:
    by_path: dict[str, list[Entry]] = {}
    for entry in nav.entries:
        by_path.setdefault(entry.path, []).append(entry)
    seen: set[str] = set()
    for item, linear in package.spine:
        if item.path in seen or not _is_content(item) or not archive.has(item.path):
            if not archive.has(item.path):
                log.warning("%s: spine item %s is not in the archive", archive.name or "document", item.path)
            continue
        seen.add(item.path)
        entries = by_path.get(item.path, [])
        marks = {frag: types for (path, frag), types in nav.anchored.items() if path == item.path}
        targets = frozenset(e.fragment for e in entries if e.fragment) | frozenset(marks)
        page = extract(decode(archive.read(item.path)), targets)
        landmarks = frozenset(nav.landmarks.get(item.path, ()))
        at = {page.anchors[frag]: frozenset(types) for frag, types in marks.items() if frag in page.anchors}
        for piece in split(item.path, page, entries, linear):
            piece.landmarks = landmarks | at.get(piece.start, frozenset())
            yield piece


def split(path: str, page: Page, entries: list[Entry], linear: bool) -> Iterator[Piece]:
    """The file whole, or cut at the anchors the navigation points to. Text before the first is a piece the
    navigation does not title (a part's heading, a title page, the end of the chapter before)."""
    if not entries:
        yield Piece(path, page.blocks, page, page.types, frozenset(), linear)
        return
    titles: dict[int, list[str]] = {}
    types: dict[int, frozenset[str]] = {}
    for entry in entries:
        at = page.anchors.get(entry.fragment, 0) if entry.fragment else 0
        titles.setdefault(at, []).append(entry.title)
        types[at] = types.get(at, frozenset()) | page.anchor_types.get(entry.fragment, frozenset())
    starts = sorted(titles)
    if starts[0] > 0:
        yield Piece(path, page.blocks[: starts[0]], page, page.types, frozenset(), linear)
    bounds = [*starts, len(page.blocks)]
    for i, at in enumerate(starts):
        blocks = page.blocks[bounds[i] : bounds[i + 1]]
        title = join_titles(titles[at])
        # The wrappers around the anchor (<section epub:type="preface">) say more than the page's first ones.
        yield Piece(path, blocks, page, types[at] or page.types, frozenset(), linear, title=title, in_nav=True,
                    start=at)  # fmt: skip


def assemble(pieces: list[Piece], kinds: list[str], keep_matter: bool, has_nav: bool) -> list[Chapter]:
    chapters: list[Chapter] = []
    continues = False  # whether the last chapter is a body chapter a following untitled file may continue
    for piece, kind in zip(pieces, kinds, strict=True):
        title, blocks = titled(piece.blocks, piece.title)
        text = speakable(blocks)
        if not text and not title:
            continue
        if kind == "body" and continues and has_nav and not piece.in_nav and not title:
            last = chapters[-1]
            chapters[-1] = Chapter(last.title, f"{last.text}\n\n{text}", last.kind)
            continue
        if kind != "body" and not keep_matter:
            continues = False
            continue
        chapters.append(Chapter(title, text or title, _kind(kind)))
        continues = kind == "body"
    return chapters


def _kind(kind: str) -> ChapterKind:
    return "front" if kind == "front" else "back" if kind == "back" else "body"
