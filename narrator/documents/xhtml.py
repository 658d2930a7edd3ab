"""(X)HTML into spoken paragraphs, with Python's html.parser: it resolves no external entity, fetches nothing,
and reads the sloppy markup real books carry (unclosed tags, stray entities, HTML in an .xhtml file).

Left out: scripts, styles, the head, navigation, SVG and MathML, footnote and endnote bodies (``aside``,
``epub:type`` footnote/endnote/rearnote, ``role="doc-…"``), page-break markers, and note references (an
``epub:type="noteref"`` link, a short link inside ``<sup>``, a ``[1]``-style link to a fragment). Image alt
text is spoken when it says something (not a file name, not "image"). Block elements end paragraphs;
``<br>`` and lines of ``<pre>`` become line breaks inside one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

LINE = "\u2028"  # a <br> inside a paragraph until the paragraph is written out
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hgroup", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "ul",
})  # fmt: skip
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "image", "input", "link", "meta", "param",
                  "source", "track", "wbr"})  # fmt: skip
SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "svg", "math", "head", "nav", "object", "iframe",
                       "audio", "video", "button", "select", "textarea", "rt", "rp", "aside"})  # fmt: skip
NOTE_TYPES = frozenset({"footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note", "notes",
                        "pagebreak", "doc-footnote", "doc-endnote", "doc-endnotes", "doc-pagebreak", "doc-noteref",
                        "noteref"})  # fmt: skip
#: Footnotes by class, and Project Gutenberg's licence header and footer (not the book; not matter either).
SKIP_CLASSES = frozenset({"footnote", "footnotes", "endnote", "endnotes", "pg-boilerplate"})
WRAPPERS = frozenset({"html", "body", "section", "div", "article", "main"})
_MARKER = re.compile(r"[\[(]?(?:\d{1,4}|[*†‡§¶]{1,3})[\])]?")
_FILE_NAME = re.compile(r"\S+\.(?:jpe?g|png|gif|svg|webp|bmp|tiff?)|\S*[/_]\S*|[\w-]+\d+", re.IGNORECASE)
_EMPTY_ALT = frozenset({"image", "img", "picture", "illustration", "cover", "cover image", "figure", "photo",
                        "logo", "decoration", "ornament", "separator", "divider", "*"})  # fmt: skip
_EMPTY_BRACKETS = re.compile(r"\s*(?:\[\s*\]|\(\s*\))")  # what a dropped [1] note marker leaves
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_MATH = re.compile(r"<(?:\w+:)?math\b.*?</(?:\w+:)?math\s*>", re.DOTALL | re.IGNORECASE)
_NO_ATTRS: dict[str, str] = {}
_NO_TYPES: frozenset[str] = frozenset()
_INVISIBLE = str.maketrans("", "", "\xad\u200b\u200c\u200d\ufeff")


@dataclass
class Block:
    text: str
    heading: int = 0
    """1 to 6 for <h1> to <h6>, else 0."""
    link_words: int = 0
    """Words inside links (a page made of them is a table of contents)."""


@dataclass
class Page:
    blocks: list[Block] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    """Element id -> the index of the first block at or after it."""
    anchor_types: dict[str, frozenset[str]] = field(default_factory=dict)
    """Element id -> its epub:type and roles with those of the wrappers around it (section, body, …)."""
    types: frozenset[str] = frozenset()
    """epub:type and doc-* roles of the wrappers (html, body, section, …) opened before the first text."""
    title: str = ""
    lang: str | None = None
    images: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return sum(len(b.text.split()) for b in self.blocks)


def meaningful_alt(alt: str) -> bool:
    alt = alt.strip()
    lower = alt.lower()
    return bool(alt) and lower not in _EMPTY_ALT and not _FILE_NAME.fullmatch(alt) and not lower.endswith("logo")


def types_of(attrs: dict[str, str]) -> frozenset[str]:
    return frozenset((attrs.get("epub:type", "") + " " + attrs.get("role", "")).lower().split())


@dataclass
class _Open:
    tag: str
    skip: bool = False
    mark: tuple[int, int] | None = None
    """For a possible note marker: (blocks, parts) when it opened; its text is dropped if it is one."""
    sup: bool = False
    linked: bool = False
    types: frozenset[str] = frozenset()


class _Extractor(HTMLParser):
    def __init__(self, targets: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.targets = targets
        self.page = Page()
        self.stack: list[_Open] = []
        self.parts: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.links = 0
        self.in_title = False
        self.link_words = 0
        self.title: list[str] = []
        self.wrapper_types: set[str] = set()

    # -- structure ----------------------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        # Called for every tag of a book (hundreds of thousands): attributes are looked at only when present.
        attrs = {k: v or "" for k, v in attr_list} if attr_list else _NO_ATTRS
        types = types_of(attrs) if ("epub:type" in attrs or "role" in attrs) else _NO_TYPES
        if tag in ("img", "image"):
            self._image(attrs)
            return
        if tag in BLOCKS:
            if not self.skipping:
                self.flush()
        elif tag == "br":
            if not self.skipping:
                self.parts.append(LINE)
        elif tag == "title":
            self.in_title = not any(o.tag == "body" for o in self.stack)
        if tag == "html":
            self.page.lang = attrs.get("lang") or attrs.get("xml:lang") or None
        if "id" in attrs or "name" in attrs:
            self._anchor(attrs, types)
        if tag in VOID:
            return
        skip = tag in SKIP_TAGS or bool(types & NOTE_TYPES) or (
            "class" in attrs and bool(SKIP_CLASSES.intersection(attrs["class"].split())))  # fmt: skip
        opened = _Open(tag, skip, types=types if tag in WRAPPERS else _NO_TYPES)
        if tag == "a" or tag == "sup":
            self._maybe_marker(tag, attrs, opened)
        elif tag == "pre":
            self.pre += 1
        self.skipping += skip
        self.stack.append(opened)
        if types and tag in WRAPPERS and not self.page.blocks and not self._has_text():
            self.wrapper_types |= types

    def _maybe_marker(self, tag: str, attrs: dict[str, str], opened: _Open) -> None:
        """A <sup> or a link to a fragment may be a note reference: remember where its text starts."""
        if tag == "sup" or "#" in attrs.get("href", ""):
            opened.mark = (len(self.page.blocks), len(self.parts))
            opened.sup = tag == "sup"
            if tag == "a" and self.stack and self.stack[-1].sup:
                self.stack[-1].linked = True
        if tag == "a" and "href" in attrs:
            self.links += 1
            opened.linked = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth].tag == tag:
                break
        else:
            return  # a stray end tag: sloppy markup, nothing to close
        while len(self.stack) > depth:
            self.close_top()

    def close_top(self) -> None:
        """Close the innermost open element (it stays on the stack until its paragraph is written out)."""
        opened = self.stack[-1]
        if opened.mark is not None and opened.mark[0] == len(self.page.blocks):
            said = "".join(self.parts[opened.mark[1]:]).strip()
            if (opened.sup and opened.linked and len(said) <= 6) or (opened.tag == "a" and _MARKER.fullmatch(said)):
                del self.parts[opened.mark[1]:]
        if opened.tag in BLOCKS and not self.skipping:
            self.flush()
        self.skipping -= opened.skip
        self.pre -= opened.tag == "pre"
        self.links -= opened.tag == "a" and opened.linked
        self.stack.pop()

    def _anchor(self, attrs: dict[str, str], types: frozenset[str]) -> None:
        ident = None if self.skipping else (attrs.get("id") or attrs.get("name"))
        if ident and ident not in self.page.anchors:
            if ident in self.targets and self._has_text():
                self.flush()  # a chapter starts at this anchor: what follows it is not the paragraph before
            self.page.anchors[ident] = len(self.page.blocks)
            around = types.union(*(o.types for o in self.stack))
            if around:
                self.page.anchor_types[ident] = around

    def _image(self, attrs: dict[str, str]) -> None:
        src = attrs.get("src") or attrs.get("xlink:href") or attrs.get("href") or ""
        if src:
            self.page.images.append(src)
        if not self.skipping and meaningful_alt(attrs.get("alt", "")):
            self.parts.append(f" {attrs['alt'].strip()} ")

    # -- text ---------------------------------------------------------------------------------------------------

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.skipping:
            return
        if self.pre:
            data = data.replace("\n", LINE)
        if self.links:
            self.link_words += len(data.split())
        self.parts.append(data)

    def _has_text(self) -> bool:
        return any(p.strip() for p in self.parts)

    def flush(self) -> None:
        raw = "".join(self.parts).translate(_INVISIBLE)
        self.parts.clear()
        lines = (" ".join(line.split()) for line in raw.split(LINE))
        text = _EMPTY_BRACKETS.sub("", "\n".join(line for line in lines if line))
        if text:
            level = next((int(o.tag[1]) for o in self.stack if o.tag in _HEADINGS), 0)
            self.page.blocks.append(Block(text, level, self.link_words))
        self.link_words = 0


def extract(markup: str, targets: frozenset[str] = frozenset()) -> Page:
    """The page's paragraphs; ``targets``: the ids a chapter starts at (a paragraph is cut there, nowhere else)."""
    parser = _Extractor(targets)
    if "math" in markup:
        # MathML is never spoken, and a mathematics book is mostly its tags: cut it out at regex speed.
        markup = _MATH.sub(" ", markup)
    parser.feed(markup)
    parser.close()
    while parser.stack:
        parser.close_top()
    parser.flush()
    page = parser.page
    page.title = " ".join("".join(parser.title).split())
    page.types = frozenset(parser.wrapper_types)
    return page
