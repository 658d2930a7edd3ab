"""Books: an EPUB of 500,000 words read into its chapter list (target under 2 s).

The EPUB is built in memory: 40 chapters of generated prose (words drawn from public-domain
novels' vocabulary, seeded), in paragraphs of 40 to 120 words, with a nav document, an NCX, a
cover page and a copyright page, as a real book has. The figure is the best of three runs of
``narrator.documents.read_document`` on its bytes; the ratio is the time over the 2 s target
(under 1 meets it).

The parts are functions (``build_epub``, ``read_seconds``, ``epub_rows``) so another figure of
this module (the M4B writer's) can sit beside them in ``run()``.

Run: python -m bench.bench_book
"""

from __future__ import annotations

import io
import random
import time
import zipfile

from narrator.documents import read_document

Row = tuple[str, float | None, str, float | None, float | None]
TARGET_SECONDS = 2.0
_VOCABULARY = (
    "the of and to a in that it was he i his you with as for had is her not but at on she my be have him "
    "which by this all they were so from no when one there said what would are their if we been me an will "
    "them or upon more could some into then very about than now little who did must any time man should out "
    "upon old heart night house door eyes hand mind great long thought again before nothing good might face "
    "though never room voice whole father mother sister brother friend fortune marriage letter window evening "
    "morning darkness silence terror lantern chamber raven dreary midnight sorrow tempest carriage gentleman "
    "lady village river mountain journey stranger kingdom princess frog golden well wonder forest castle"
).split()


def chapter_text(rng: random.Random, words: int) -> list[str]:
    """Paragraphs of generated prose, about ``words`` words together."""
    out: list[str] = []
    left = words
    while left > 0:
        n = min(left, rng.randint(40, 120))
        sentence_words = rng.choices(_VOCABULARY, k=n)
        sentences = []
        for i in range(0, n, 12):
            part = sentence_words[i : i + 12]
            sentences.append(" ".join(part).capitalize() + ".")
        out.append(" ".join(sentences))
        left -= n
    return out


def _page(title: str, paragraphs: list[str], attrs: str = "", section: str = "chapter") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
            f'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head>'
            f'<body {attrs}><section epub:type="{section}"><h1>{title}</h1>{body}</section>'
            "</body></html>")  # fmt: skip


def build_epub(words: int = 500_000, chapters: int = 40, seed: int = 1847) -> bytes:
    rng = random.Random(seed)
    files = {f"ch{i:03d}.xhtml": (f"Chapter {i}", chapter_text(rng, words // chapters)) for i in range(1, chapters + 1)}
    members: dict[str, str] = {
        "META-INF/container.xml": '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
        'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>',
        "OEBPS/cover.xhtml": _page("Cover", [], section="cover"),
        "OEBPS/copyright.xhtml": _page("Copyright", ["This book is in the public domain."], section="copyright-page"),
    }
    for name, (title, paragraphs) in files.items():
        members[f"OEBPS/{name}"] = _page(title, paragraphs)
    links = "".join(f'<li><a href="{n}">{t}</a></li>' for n, (t, _) in files.items())
    members["OEBPS/nav.xhtml"] = ('<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
                                  f'<body><nav epub:type="toc"><ol>{links}</ol></nav></body></html>')  # fmt: skip
    points = "".join(f'<navPoint id="n{i}" playOrder="{i}"><navLabel><text>{t}</text></navLabel><content src="{n}"/>'
                     f"</navPoint>" for i, (n, (t, _)) in enumerate(files.items(), 1))  # fmt: skip
    members["OEBPS/toc.ncx"] = f'<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>{points}</navMap></ncx>'
    names = ["cover.xhtml", "copyright.xhtml", *files]
    items = "".join(f'<item id="i{i}" href="{n}" media-type="application/xhtml+xml"/>' for i, n in enumerate(names))
    spine = "".join(f'<itemref idref="i{i}"/>' for i in range(len(names)))
    members["OEBPS/content.opf"] = (
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>A Long Book</dc:title><dc:creator>Anon</dc:creator>'
        f'<dc:language>en</dc:language></metadata><manifest>{items}<item id="nav" href="nav.xhtml" '
        'media-type="application/xhtml+xml" properties="nav"/><item id="ncx" href="toc.ncx" '
        f'media-type="application/x-dtbncx+xml"/></manifest><spine toc="ncx">{spine}</spine></package>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, text in members.items():
            z.writestr(name, text)
    return buffer.getvalue()


def read_seconds(data: bytes, repeat: int = 3) -> tuple[float, int, int]:
    """(best time to read ``data`` into chapters, chapters, words)."""
    best = float("inf")
    chapters = words = 0
    for _ in range(repeat):
        started = time.perf_counter()
        book = read_document(data, name="long.epub")
        best = min(best, time.perf_counter() - started)
        chapters, words = len(book.chapters), book.words
    return best, chapters, words


def epub_rows(words: int = 500_000, chapters: int = 40, repeat: int = 3) -> list[Row]:
    data = build_epub(words, chapters)
    seconds, found, spoken = read_seconds(data, repeat)
    if found != chapters:
        raise AssertionError(f"read {found} chapters, built {chapters}")
    label = f"EPUB {spoken // 1000}k words, {found} chapters -> list (target < 2 s)"
    return [
        (label, seconds, "s", TARGET_SECONDS, seconds / TARGET_SECONDS),
        (f"EPUB read rate ({len(data) / 1e6:.1f} MB zipped)", spoken / seconds / 1e6, "Mwords/s", None, None),
    ]


def run() -> list[Row]:
    return epub_rows()


def main() -> None:
    from bench.__main__ import format_row

    for row in run():
        print(format_row(row))


if __name__ == "__main__":
    main()
