"""Archives and documents that must be refused: each an InvalidRequest on "document" that says why."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable

import pytest

from narrator.documents import DocumentLimits, read_document
from narrator.errors import InvalidRequest

from .build import POE, Epub, Page, paras, zip_bytes

ENCRYPTION = ('<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
              'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
              '<enc:EncryptionMethod Algorithm="{alg}"/><enc:CipherData><enc:CipherReference URI="{uri}"/>'
              "</enc:CipherData></enc:EncryptedData></encryption>")  # fmt: skip
CONTAINER = ('<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
             '<rootfiles><rootfile full-path="{}" media-type="application/oebps-package+xml"/></rootfiles></container>')
AES = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
BOMB_OPF = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
            '<package xmlns="http://www.idpf.org/2007/opf"><metadata>&b;</metadata></package>')  # fmt: skip


def book(**kw: object) -> Epub:
    return Epub(pages=[Page("c1.xhtml", f"<h1>One</h1>{paras(POE, 5)}")], **kw)  # type: ignore[arg-type]


def with_members(extra: dict[str, bytes | str]) -> bytes:
    return book(extra=extra).build()


def truncated() -> bytes:
    data = book().build()
    return data[: len(data) // 2]


def big_member() -> bytes:
    # 100 KB of text that deflates about 3:1: within the ratio, past a 50 KB unpacking limit.
    return with_members({"OEBPS/big.txt": os.urandom(50_000).hex()})


def zeros() -> bytes:
    return with_members({"OEBPS/zeros.xhtml": b"\0" * 2_000_000})


def lying_size() -> bytes:
    """A chapter whose central directory claims fewer bytes than it inflates to: read no further than that."""
    data = bytearray(book().build())
    end = data.rfind(b"PK\x05\x06")
    central = int.from_bytes(data[end + 16 : end + 20], "little")
    while data[central : central + 4] == b"PK\x01\x02":
        length = int.from_bytes(data[central + 28 : central + 30], "little")
        name = bytes(data[central + 46 : central + 46 + length])
        if name == b"OEBPS/c1.xhtml":
            data[central + 24 : central + 28] = (10).to_bytes(4, "little")
        extra = int.from_bytes(data[central + 30 : central + 32], "little")
        comment = int.from_bytes(data[central + 32 : central + 34], "little")
        central += 46 + length + extra + comment
    return bytes(data)


def opf_href(href: str) -> bytes:
    epub = book()
    data = epub.build()
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z:
        members: dict[str, bytes | str] = {n: z.read(n) for n in z.namelist()}
    opf = members["OEBPS/content.opf"]
    assert isinstance(opf, bytes)
    members["OEBPS/content.opf"] = opf.replace(b'href="c1.xhtml"', f'href="{href}"'.encode())
    return zip_bytes(members)


SMALL = DocumentLimits(max_bytes=1_000_000, max_unpacked=50_000, max_members=8)
CASES: list[tuple[str, Callable[[], bytes], DocumentLimits, str]] = [
    ("path traversal", lambda: with_members({"../evil.xhtml": "x"}), DocumentLimits(),
     "has an archive member with an unsafe path ('../evil.xhtml'); refused"),
    ("traversal inside", lambda: with_members({"OEBPS/../../evil": "x"}), DocumentLimits(), "unsafe path"),
    ("absolute path", lambda: with_members({"/etc/passwd": "x"}), DocumentLimits(), "unsafe path ('/etc/passwd')"),
    ("backslash", lambda: with_members({"OEBPS\\c2.xhtml": "x"}), DocumentLimits(), "unsafe path"),
    ("drive letter", lambda: with_members({"C:/x.xhtml": "x"}), DocumentLimits(), "unsafe path"),
    ("href outside the archive", lambda: opf_href("../../outside.xhtml"), DocumentLimits(),
     "has a manifest item outside the archive ('../../outside.xhtml'); refused"),
    ("absolute href", lambda: opf_href("/etc/passwd"), DocumentLimits(), "outside the archive"),
    ("nav link outside", lambda: book(nav=[("../../x.xhtml", "X", 1)]).build(), DocumentLimits(),
     "has a table of contents link outside the archive (../../x.xhtml); refused"),
    ("zip bomb: declared sizes", big_member, SMALL, "would unpack to 10"),
    ("zip bomb: ratio", zeros, DocumentLimits(), "has a member (OEBPS/zeros.xhtml) compressed"),
    ("zip bomb: lying size", lying_size, DocumentLimits(), "is a corrupt zip archive"),
    ("too many members", lambda: with_members({f"OEBPS/f{i}.css": "p{}" for i in range(10)}), SMALL,
     "has 14 archive members, more than the 8 allowed"),
    ("DRM", lambda: with_members({"META-INF/encryption.xml": ENCRYPTION.format(alg=AES, uri="OEBPS/c1.xhtml")}),
     DocumentLimits(), "is DRM-protected (META-INF/encryption.xml encrypts its text); "
     "narrator reads DRM-free books only"),
    ("DRM rights file", lambda: with_members({"META-INF/rights.xml": "<rights/>"}), DocumentLimits(),
     "is DRM-protected (META-INF/rights.xml)"),
    ("corrupt zip", truncated, DocumentLimits(), "is a corrupt zip archive"),
    ("not an EPUB zip", lambda: zip_bytes({"hello.txt": "hi"}), DocumentLimits(),
     "is a zip archive but not an EPUB (it has no META-INF/container.xml)"),
    ("no container", lambda: zip_bytes({"mimetype": "application/epub+zip", "a.xhtml": "x"}), DocumentLimits(),
     "is not a readable EPUB: META-INF/container.xml is missing"),
    ("no OPF", lambda: with_members({"META-INF/container.xml": CONTAINER.format("X/content.opf")}), DocumentLimits(),
     "is not a readable EPUB: its OPF package document (X/content.opf) is missing"),
    ("container names no OPF", lambda: with_members({"META-INF/container.xml": CONTAINER.format("")}),
     DocumentLimits(), "is not a readable EPUB: META-INF/container.xml names no OPF package document"),
    ("entities in the OPF", lambda: with_members({"OEBPS/content.opf": BOMB_OPF}), DocumentLimits(),
     "declares XML entities in its OPF package document (OEBPS/content.opf); refused"),
    ("empty book", lambda: Epub(pages=[Page("a.xhtml", "<p> </p><img src='x.png' alt='x.png'/>")]).build(),
     DocumentLimits(), "has no text to speak"),
    ("only matter", lambda: Epub(pages=[Page("a.xhtml", "<p>All rights reserved.</p>",
                                             body_attrs='epub:type="copyright-page"')]).build(),
     DocumentLimits(), "has no text to speak (only front and back matter, which keep_matter reads)"),
    ("over max_bytes", lambda: b"x" * 2_000_001, DocumentLimits(max_bytes=2_000_000),
     "is 2000001 bytes, more than the 2000000 allowed"),
    ("a PDF", lambda: b"%PDF-1.7\n...", DocumentLimits(), "is a PDF; narrator reads EPUB, HTML, Markdown and plain"),
    ("binary", lambda: bytes(range(256)) * 4, DocumentLimits(), "is not a document narrator reads"),
    ("empty text", lambda: b"  \n\n \t", DocumentLimits(), "has no text to speak"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "limits", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused(make: Callable[[], bytes], limits: DocumentLimits, message: str) -> None:
    data = make()
    name = "hostile.epub" if data.startswith(b"PK") else "hostile.txt"
    with pytest.raises(InvalidRequest) as caught:
        read_document(data, name=f"books/{name}", limits=limits)
    assert caught.value.field == "document"
    assert str(caught.value).startswith(f"document: {name} ")
    assert message in str(caught.value)


def test_fonts_obfuscated_as_the_standard_allows_are_not_drm() -> None:
    font = ENCRYPTION.format(alg="http://www.idpf.org/2008/embedding", uri="OEBPS/fonts/serif.otf")
    chapters = read_document(with_members({"META-INF/encryption.xml": font})).chapters
    assert [c.title for c in chapters] == ["One"]


def test_a_broken_navigation_document_falls_back_to_headings() -> None:
    data = book(ncx=[("c1.xhtml", "Ignored", 1)], extra={"OEBPS/toc.ncx": "<ncx><navMap><unclosed></navMap>"}).build()
    assert [c.title for c in read_document(data).chapters] == ["One"]


def test_nothing_is_written_to_disk(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_extract(*a: object, **k: object) -> None:
        raise AssertionError("extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extract)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extract)
    assert read_document(book().build()).chapters
