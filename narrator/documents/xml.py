"""The EPUB's own XML (container, OPF, NCX, encryption) parsed with defusedxml: no entities, nothing fetched.

Elements are matched by local name: real packages get their namespaces wrong often enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .archive import Archive
from .refuse import refused


def local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def attr(element: Element, name: str) -> str:
    """An attribute by local name (``properties``, ``opf:role``, ``{ns}href`` alike), stripped; "" if absent."""
    for key, value in element.attrib.items():
        if local(key) == name or key.rsplit(":", 1)[-1] == name:
            return value.strip()
    return ""


def children(element: Element, name: str) -> Iterator[Element]:
    return (e for e in element.iter() if local(e.tag) == name)


def text_of(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())


def parse(archive: Archive, path: str, what: str) -> Element:
    """The member ``path`` as XML; a missing or malformed one refuses the document."""
    if not archive.has(path):
        raise refused(archive.name, f"is not a readable EPUB: {what} ({path}) is missing")
    try:
        return fromstring(archive.read(path))
    except DefusedXmlException:
        raise refused(archive.name, f"declares XML entities in {what} ({path}); refused") from None
    except ParseError as exc:
        raise refused(archive.name, f"is not a readable EPUB: {what} ({path}) is not well-formed XML ({exc})") from None
