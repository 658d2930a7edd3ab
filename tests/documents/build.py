"""EPUBs written by the tests: a zip of XHTML strings, with nav, NCX, guide, cover and spine as asked."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from html import escape

POE = ("True! nervous, very, very dreadfully nervous I had been and am; but why will you say that I am mad? "
       "The disease had sharpened my senses, not destroyed, not dulled them.")  # fmt: skip
AUSTEN = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
          "want of a wife.")  # fmt: skip
DICKENS = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
           "foolishness, it was the epoch of belief, it was the epoch of incredulity.")  # fmt: skip
GRIMM = ("In den alten Zeiten, wo das Wünschen noch geholfen hat, lebte ein König, dessen Töchter waren alle "
         "schön; aber die jüngste war so schön, daß die Sonne selber sich verwunderte, sooft sie ihr ins Gesicht "
         "schien.")  # fmt: skip
RAVEN = "Once upon a midnight dreary, while I pondered, weak and weary, over many a quaint and curious volume."
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(range(64)) + b"\xff\xd9"
Nav = list[tuple[str, str, int]]  # (href, title, depth)


def paras(line: str, n: int) -> str:
    """``n`` paragraphs of ``line``: enough words for a real chapter."""
    return "".join(f"<p>{escape(line)}</p>" for _ in range(n))


def xhtml(body: str, body_attrs: str = "", title: str = "") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
            f"<head><title>{escape(title)}</title><link rel='stylesheet' href='s.css'/></head>"
            f"<body {body_attrs}>{body}</body></html>")  # fmt: skip


@dataclass
class Page:
    name: str
    body: str
    linear: bool = True
    properties: str = ""
    body_attrs: str = ""


@dataclass
class Epub:
    pages: list[Page] = field(default_factory=list)
    title: str = "Tales"
    creators: tuple[str, ...] = ("Edgar Allan Poe",)
    language: str = "en"
    version: str = "3.0"
    nav: Nav | None = None
    nav_in_spine: bool = False
    ncx: Nav | None = None
    landmarks: list[tuple[str, str]] = field(default_factory=list)
    guide: list[tuple[str, str]] = field(default_factory=list)
    cover: bytes | None = None
    spine: list[str] | None = None
    """File names in reading order, when not the pages' order."""
    extra: dict[str, bytes | str] = field(default_factory=dict)
    root: str = "OEBPS"

    def build(self) -> bytes:
        members: dict[str, bytes | str] = {"mimetype": "application/epub+zip"}
        members["META-INF/container.xml"] = (
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            f'<rootfiles><rootfile full-path="{self.root}/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>")  # fmt: skip
        for page in self.pages:
            members[f"{self.root}/{page.name}"] = xhtml(page.body, page.body_attrs)
        if self.nav is not None:
            members[f"{self.root}/nav.xhtml"] = self._nav_doc()
        if self.ncx is not None:
            members[f"{self.root}/toc.ncx"] = self._ncx_doc()
        if self.cover is not None:
            members[f"{self.root}/images/cover.jpg"] = self.cover
        members[f"{self.root}/content.opf"] = self._opf()
        members.update(self.extra)
        return zip_bytes(members)

    def _opf(self) -> str:
        meta = f"<dc:title>{escape(self.title)}</dc:title><dc:language>{self.language}</dc:language>"
        meta += "".join(f'<dc:creator id="c{i}">{escape(c)}</dc:creator>' for i, c in enumerate(self.creators))
        items = [f'<item id="p{i}" href="{p.name}" media-type="application/xhtml+xml"'
                 f'{f" properties={chr(34)}{p.properties}{chr(34)}" if p.properties else ""}/>'
                 for i, p in enumerate(self.pages)]  # fmt: skip
        if self.nav is not None:
            items.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        if self.ncx is not None:
            items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        if self.cover is not None:
            props = ' properties="cover-image"' if self.version.startswith("3") else ""
            items.append(f'<item id="cover-img" href="images/cover.jpg" media-type="image/jpeg"{props}/>')
            if not self.version.startswith("3"):
                meta += '<meta name="cover" content="cover-img"/>'
        ids = {p.name: f"p{i}" for i, p in enumerate(self.pages)}
        order = self.spine or [p.name for p in self.pages]
        linear = {p.name: p.linear for p in self.pages}
        refs = [f'<itemref idref="{ids[n]}"{"" if linear[n] else " linear=" + chr(34) + "no" + chr(34)}/>'
                for n in order]  # fmt: skip
        if self.nav_in_spine:
            refs.insert(0, '<itemref idref="nav"/>')
        toc = ' toc="ncx"' if self.ncx is not None else ""
        guide = "".join(f'<reference type="{t}" href="{h}" title="{t}"/>' for h, t in self.guide)
        return ('<?xml version="1.0" encoding="utf-8"?>'
                f'<package xmlns="http://www.idpf.org/2007/opf" version="{self.version}" unique-identifier="id">'
                f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{meta}</metadata>'
                f"<manifest>{''.join(items)}</manifest><spine{toc}>{''.join(refs)}</spine>"
                f"{f'<guide>{guide}</guide>' if guide else ''}</package>")  # fmt: skip

    def _nav_doc(self) -> str:
        body = f'<nav epub:type="toc" id="toc"><h1>Contents</h1>{nested_list(self.nav or [], "a")}</nav>'
        if self.landmarks:
            marks = "".join(f'<li><a epub:type="{t}" href="{h}">{t}</a></li>' for h, t in self.landmarks)
            body += f'<nav epub:type="landmarks"><ol>{marks}</ol></nav>'
        return xhtml(body)

    def _ncx_doc(self) -> str:
        points, stack, n = "", 0, 0
        for href, title, depth in self.ncx or []:
            while stack >= depth:
                points += "</navPoint>"
                stack -= 1
            n += 1
            points += (f'<navPoint id="n{n}" playOrder="{n}"><navLabel><text>{escape(title)}</text></navLabel>'
                       f'<content src="{href}"/>')  # fmt: skip
            stack += 1
        points += "</navPoint>" * stack
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" "http://www.daisy.org/z3986/2005/ncx-2005-1.dtd">'
                '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><head/>'
                f"<docTitle><text>{escape(self.title)}</text></docTitle><navMap>{points}</navMap></ncx>")  # fmt: skip


def nested_list(entries: Nav, tag: str) -> str:
    """``<ol><li><a>…`` nested by depth, as a nav document writes sub-sections."""
    out, depth = "", 0
    for href, title, level in entries:
        if level > depth:
            out += "<ol><li>" * (level - depth)
        else:
            out += "</li></ol>" * (depth - level) + "</li><li>"
        depth = level
        out += f'<{tag} href="{href}">{escape(title)}</{tag}>'
    return out + "</li></ol>" * depth


def zip_bytes(members: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name) if name == "mimetype" else name,
                       data.encode() if isinstance(data, str) else data)  # fmt: skip
    return buffer.getvalue()
