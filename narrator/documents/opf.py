"""The package document: where it is (META-INF/container.xml), its metadata, manifest, spine, guide and cover."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from .archive import Archive, resolve
from .refuse import refused
from .xml import attr, children, local, parse, text_of

log = logging.getLogger(__name__)
CONTAINER = "META-INF/container.xml"


@dataclass(frozen=True)
class Item:
    id: str
    path: str
    media_type: str
    properties: frozenset[str] = frozenset()


@dataclass
class Package:
    path: str
    title: str = ""
    authors: list[str] = field(default_factory=list)
    language: str | None = None
    manifest: dict[str, Item] = field(default_factory=dict)
    spine: list[tuple[Item, bool]] = field(default_factory=list)
    """(item, linear) in reading order."""
    ncx: Item | None = None
    nav: Item | None = None
    guide: dict[str, set[str]] = field(default_factory=dict)
    """Archive path -> guide reference types (EPUB 2)."""
    cover: Item | None = None


def opf_path(archive: Archive) -> str:
    root = parse(archive, CONTAINER, "META-INF/container.xml")
    for rootfile in children(root, "rootfile"):
        media = attr(rootfile, "media-type")
        if media in ("", "application/oebps-package+xml"):
            try:
                path = resolve("", attr(rootfile, "full-path"))
            except ValueError:
                raise refused(archive.name, "names its OPF outside the archive; refused") from None
            if path:
                return path
    raise refused(archive.name, "is not a readable EPUB: META-INF/container.xml names no OPF package document")


def read_package(archive: Archive) -> Package:
    path = opf_path(archive)
    root = parse(archive, path, "its OPF package document")
    package = Package(path)
    _metadata(root, package)
    _manifest(archive, root, package)
    _spine(root, package)
    _guide(archive, root, package)
    package.cover = _cover(root, package)
    return package


def _metadata(root: Element, package: Package) -> None:
    for element in root.iter():
        name = local(element.tag)
        if name == "title" and not package.title:
            package.title = text_of(element)
        elif name == "creator" and attr(element, "role") in ("", "aut"):
            creator = text_of(element)
            if creator and creator not in package.authors:
                package.authors.append(creator)
        elif name == "language" and package.language is None:
            package.language = text_of(element) or None


def _manifest(archive: Archive, root: Element, package: Package) -> None:
    for element in children(root, "item"):
        try:
            path = resolve(package.path, attr(element, "href"))
        except ValueError:
            raise refused(archive.name, f"has a manifest item outside the archive ({attr(element, 'href')!r}); "
                          "refused") from None  # fmt: skip
        if path is None:
            log.info("manifest item %s is not in the archive; not read", attr(element, "href"))
            continue
        props = frozenset(attr(element, "properties").split())
        item = Item(attr(element, "id"), path, attr(element, "media-type"), props)
        package.manifest[item.id] = item
        if "nav" in props and package.nav is None:
            package.nav = item


def _spine(root: Element, package: Package) -> None:
    for spine in children(root, "spine"):
        toc = package.manifest.get(attr(spine, "toc"))
        package.ncx = toc
        for ref in children(spine, "itemref"):
            item = package.manifest.get(attr(ref, "idref"))
            if item is not None:
                package.spine.append((item, attr(ref, "linear").lower() != "no"))
        break
    if package.ncx is None:
        package.ncx = next((i for i in package.manifest.values() if i.media_type == "application/x-dtbncx+xml"), None)


def _guide(archive: Archive, root: Element, package: Package) -> None:
    for ref in children(root, "reference"):
        try:
            path = resolve(package.path, attr(ref, "href").split("#")[0])
        except ValueError:
            raise refused(archive.name, f"has a guide reference outside the archive ({attr(ref, 'href')!r}); "
                          "refused") from None  # fmt: skip
        if path:
            package.guide.setdefault(path, set()).add(attr(ref, "type").lower())


def _cover(root: Element, package: Package) -> Item | None:
    """EPUB 3's ``properties="cover-image"``, else EPUB 2's ``<meta name="cover" content="id">``."""
    for item in package.manifest.values():
        if "cover-image" in item.properties:
            return item
    for meta in children(root, "meta"):
        if attr(meta, "name") == "cover":
            named = package.manifest.get(attr(meta, "content"))
            if named is not None and named.media_type.startswith("image/"):
                return named
    return None
