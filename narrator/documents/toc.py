"""The book's navigation: EPUB 3's nav document (its toc and landmarks) or EPUB 2's NCX, as archive paths.

A broken navigation document is not a broken book: it is logged and the titles come from headings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException

from ..errors import InvalidRequest
from .archive import Archive, resolve
from .decode import decode
from .opf import Package
from .refuse import refused
from .xhtml import types_of
from .xml import attr, children, local, parse, text_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    path: str
    fragment: str
    title: str
    depth: int


@dataclass
class Navigation:
    entries: list[Entry] = field(default_factory=list)
    landmarks: dict[str, set[str]] = field(default_factory=dict)
    """Archive path -> landmark types (cover, toc, bodymatter, …), EPUB 3's landmarks and EPUB 2's guide."""
    anchored: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """(archive path, fragment) -> the types of landmarks pointing inside a file: they mark the part there."""


def read_navigation(archive: Archive, package: Package) -> Navigation:
    nav = Navigation(landmarks={p: set(t) for p, t in package.guide.items()})
    try:
        if package.nav is not None:
            _read_nav(archive, package.nav.path, nav)
        if not nav.entries and package.ncx is not None:
            nav.entries = _read_ncx(archive, package.ncx.path)
    except ValueError as exc:
        raise refused(archive.name, f"has a table of contents link outside the archive ({exc}); refused") from None
    except (InvalidRequest, DefusedXmlException, KeyError) as exc:
        # A broken table of contents, not a broken book: the chapters get their headings' titles.
        log.warning("%s: navigation not used (%s)", archive.name or "document", exc)
        nav.entries = []
    return nav


class _NavParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.kind = ""  # the nav being read: toc, landmarks or "" (another or none)
        self.navs: dict[str, list[tuple[str, str, int, frozenset[str]]]] = {}
        self.depth = 0
        self.href: str | None = None
        self.types: frozenset[str] = frozenset()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attr_list}
        if tag == "nav":
            types = types_of(attrs)
            # A nav with no type may be the toc of a sloppy book; a page-list's entries would split every page.
            kinds = ("toc" if types & {"toc", "doc-toc"} else "landmarks" if "landmarks" in types else "")
            self.kind = kinds or ("other" if not types else "")
            self.depth = 0
        elif tag == "ol" and self.kind:
            self.depth += 1
        elif tag == "a" and self.kind:
            self.href, self.types, self.text = attrs.get("href", ""), types_of(attrs), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self.kind = ""
        elif tag == "ol" and self.kind:
            self.depth -= 1
        elif tag == "a" and self.kind and self.href is not None:
            title = " ".join("".join(self.text).split())
            self.navs.setdefault(self.kind, []).append((self.href, title, self.depth, self.types))
            self.href = None

    def handle_data(self, data: str) -> None:
        if self.href is not None:
            self.text.append(data)


def _read_nav(archive: Archive, path: str, nav: Navigation) -> None:
    parser = _NavParser()
    parser.feed(decode(archive.read(path)))
    parser.close()
    for href, title, depth, _ in parser.navs.get("toc") or parser.navs.get("other") or []:
        target = resolve(path, href.split("#")[0]) if not href.startswith("#") else path
        if target:
            nav.entries.append(Entry(target, unquote(href.partition("#")[2]), title, depth))
    for href, _, _, types in parser.navs.get("landmarks", []):
        target = resolve(path, href.split("#")[0]) if not href.startswith("#") else path
        fragment = unquote(href.partition("#")[2])
        if target and fragment:
            nav.anchored.setdefault((target, fragment), set()).update(types)
        elif target:
            nav.landmarks.setdefault(target, set()).update(types)


def _read_ncx(archive: Archive, path: str) -> list[Entry]:
    root = parse(archive, path, "its NCX table of contents")
    entries: list[Entry] = []
    for nav_map in children(root, "navMap"):
        _points(nav_map, path, 1, entries)
        break
    return entries


def _points(parent: Element, path: str, depth: int, out: list[Entry]) -> None:
    for point in parent:
        if local(point.tag) != "navPoint":
            continue
        label = next((text_of(e) for e in point if local(e.tag) == "navLabel"), "")
        src = next((attr(e, "src") for e in point if local(e.tag) == "content"), "")
        target = resolve(path, src.split("#")[0]) if src else None
        if target:
            out.append(Entry(target, unquote(src.partition("#")[2]), label, depth))
        _points(point, path, depth + 1, out)
