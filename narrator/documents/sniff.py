"""Which reader a document needs, from its bytes and its name, when the caller does not say."""

from __future__ import annotations

import posixpath
import re

from .refuse import refused

KINDS = ("epub", "html", "markdown", "text")
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_HTML = re.compile(rb"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]",
                   re.IGNORECASE | re.DOTALL)  # fmt: skip
_MD_HEADING = re.compile(rb"^#{1,2}[ \t]+\S", re.MULTILINE)
EXTENSIONS = {".epub": "epub", ".html": "html", ".htm": "html", ".xhtml": "html", ".md": "markdown",
                 ".markdown": "markdown", ".txt": "text"}  # fmt: skip
NOT_READ = "is not a document narrator reads (EPUB, HTML, Markdown or plain text)"


def sniff(data: bytes, name: str) -> str:
    if data.startswith(_ZIP):
        return "epub"  # any zip: the EPUB reader says so when it is another kind of archive
    if data.startswith(b"%PDF"):
        raise refused(name, "is a PDF; narrator reads EPUB, HTML, Markdown and plain text")
    head = data[:4096].removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise refused(name, NOT_READ)
    by_name = EXTENSIONS.get(posixpath.splitext(name.lower())[1])
    if by_name == "epub":
        raise refused(name, "is not a zip archive, as an EPUB is")
    if by_name in ("html", "markdown"):
        return by_name
    if _HTML.match(head):
        return "html"
    if by_name is None and _MD_HEADING.search(data[:65536]):
        return "markdown"
    return "text"
