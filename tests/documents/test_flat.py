"""HTML, Markdown and plain text into chapters: headings, titles, what is left out, sniffing."""

from __future__ import annotations

import pytest

from narrator.documents import read_document
from narrator.errors import InvalidRequest

from .build import AUSTEN, DICKENS, POE, RAVEN

MARKDOWN = f"""# Tales

A short preface, *emphasised*, with [a link](https://example.org) and `code`.

## The Tell-Tale Heart

{POE}

```python
print("never spoken")
```

    indented code, never spoken

## The Raven

{RAVEN}
"""


def titles_and_texts(data: bytes, **kw: object) -> list[tuple[str, str]]:
    return [(c.title, c.text) for c in read_document(data, **kw).chapters]  # type: ignore[arg-type]


def test_markdown_headings_are_chapters_a_lone_h1_is_the_book() -> None:
    book = read_document(MARKDOWN.encode(), name="tales.md")
    assert book.title == "Tales"
    assert [(c.title, c.text) for c in book.chapters] == [
        ("Tales", "A short preface, emphasised, with a link and code."),
        ("The Tell-Tale Heart", POE),
        ("The Raven", RAVEN),
    ]


def test_markdown_h1_and_h2_both_start_chapters_when_there_are_several_h1() -> None:
    text = f"Before.\n\n# One\n\n{POE}\n\n## One and a half\n\n{AUSTEN}\n\n# Two\n\n{RAVEN}\n"
    assert titles_and_texts(text.encode(), name="x.md") == [
        ("x", "Before."), ("One", POE), ("One and a half", AUSTEN), ("Two", RAVEN)]  # fmt: skip


def test_markdown_sniffed_by_its_headings() -> None:
    assert read_document(f"# A\n\n{POE}\n\n# B\n\n{RAVEN}".encode()).chapters[1].title == "B"


def test_html_title_headings_and_language() -> None:
    html = (f"<!DOCTYPE html><html lang='en-GB'><head><title>Two Tales</title><script>x()</script></head><body>"
            f"<nav><a href='/'>Home</a></nav><p>Intro.</p><h1>Heart</h1><p>{POE}</p><h3>Sub</h3><p>{AUSTEN}</p>"
            f"<h2>Raven</h2><p>{RAVEN}</p></body></html>")  # fmt: skip
    book = read_document(html.encode())
    assert (book.title, book.language) == ("Two Tales", "en-GB")
    assert [(c.title, c.text) for c in book.chapters] == [
        ("Two Tales", "Intro."), ("Heart", f"{POE}\n\nSub\n\n{AUSTEN}"), ("Raven", RAVEN)]  # fmt: skip


def test_headings_pattern_and_none_for_html_and_markdown() -> None:
    titles = [t for t, _ in titles_and_texts(MARKDOWN.encode(), name="t.md", headings=r"The R")]
    assert titles == ["Tales", "The Raven"]  # the lone "# Tales" still names the book
    assert len(read_document(MARKDOWN.encode(), name="t.md", headings="none").chapters) == 1


PLAIN_HEADINGS = [
    ("Chapter 1", "Chapter 1"),
    ("CHAPTER ONE", "CHAPTER ONE"),
    ("Chapter XII. The Storm", "Chapter XII. The Storm"),
    ("Part II", "Part II"),
    ("PROLOGUE", "PROLOGUE"),
    ("Epilogue", "Epilogue"),
    ("BOOK THE FIRST", "BOOK THE FIRST"),
    ("CHAPTER I.\n\nDown the Rabbit-Hole", "CHAPTER I. Down the Rabbit-Hole"),
    ("Chapter 3\nThe Storm", "Chapter 3. The Storm"),
]


@pytest.mark.parametrize(("heading", "title"), PLAIN_HEADINGS)
def test_plain_text_heading_styles(heading: str, title: str) -> None:
    text = f"{POE}\n\n{heading}\n\n{DICKENS}\n\nChapter 99\n\n{AUSTEN}\n"
    chapters = read_document(text.encode(), name="book.txt").chapters
    assert (chapters[0].title, chapters[0].text) == ("book", POE)
    assert (chapters[1].title, chapters[1].text) == (title, DICKENS)
    assert (chapters[2].title, chapters[2].text) == ("Chapter 99", AUSTEN)


def test_plain_text_without_headings_is_one_chapter_with_its_paragraphs() -> None:
    text = f"  {POE}\r\n\r\n{DICKENS[:40]}\n{DICKENS[40:]}\n\n\n\n{AUSTEN}  "
    (chapter,) = read_document(text.encode(), name="a.txt").chapters
    assert chapter.text == f"{POE}\n\n{DICKENS[:40].strip()}\n{DICKENS[40:]}\n\n{AUSTEN}"


def novel(middle: str, sections: int = 3) -> str:
    long = "\n\n".join([DICKENS] * 40)  # about 1,200 words
    return f"\n\n{middle}\n\n".join([long] * sections)


def test_short_title_lines_between_long_text_are_chapters() -> None:
    chapters = read_document(novel("The Storm Breaks").encode(), name="n.txt").chapters
    assert [c.title for c in chapters] == ["n", "The Storm Breaks", "The Storm Breaks"]


@pytest.mark.parametrize("line", [
    "“Are you coming?”", "Yes, sir.", "Nothing happened then", "He Was Gone!", "“The Storm Breaks”",
    "Mr. Lorry, you are late.",
])  # fmt: skip
def test_a_short_dialogue_line_in_a_novel_is_not_a_chapter(line: str) -> None:
    assert len(read_document(novel(line).encode(), name="n.txt").chapters) == 1


def test_a_lone_title_line_needs_long_text_on_both_sides() -> None:
    text = f"{POE}\n\nThe Storm Breaks\n\n{DICKENS}\n\nThe Calm\n\n{AUSTEN}"
    assert len(read_document(text.encode(), name="n.txt").chapters) == 1


def test_plain_headings_pattern_and_none() -> None:
    text = f"== One ==\n\n{POE}\n\n== Two ==\n\n{RAVEN}\n\nChapter 3\n\n{AUSTEN}"
    assert [t for t, _ in titles_and_texts(text.encode(), name="x.txt", headings=r"== ")] == ["== One ==", "== Two =="]
    assert len(read_document(text.encode(), name="x.txt", headings="none").chapters) == 1
    with pytest.raises(InvalidRequest, match="headings: '\\(' is not a regular expression"):
        read_document(text.encode(), name="x.txt", headings="(")


def test_text_in_latin1_and_with_control_characters() -> None:
    text = "Chapter 1\n\nDaß die Sonne\x07 schien.".encode("latin-1")
    (chapter,) = read_document(text, name="m.txt").chapters
    assert (chapter.title, chapter.text) == ("Chapter 1", "Daß die Sonne schien.")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="kind must be one of epub, html, markdown, text, not 'pdf'"):
        read_document(b"x", kind="pdf")


def test_project_gutenberg_licence_is_not_read() -> None:
    text = (f"The Project Gutenberg eBook of Tales\n\nThis eBook is for the use of anyone.\n\n"
            f"*** START OF THE PROJECT GUTENBERG EBOOK TALES ***\n\nChapter 1\n\n{POE}\n\n"
            f"*** END OF THE PROJECT GUTENBERG EBOOK TALES ***\n\nSection 1. General Terms of Use\n\nLicence.")
    assert titles_and_texts(text.encode(), name="pg.txt") == [("Chapter 1", POE)]
    html = (f'<html><body><section class="pg-boilerplate pgheader"><h2>The Project Gutenberg eBook</h2>'
            f"<p>Licence.</p></section><h1>Tales</h1><p>{POE}</p></body></html>")
    assert titles_and_texts(html.encode()) == [("Tales", POE)]


def test_a_file_named_epub_must_be_a_zip() -> None:
    with pytest.raises(InvalidRequest, match="document: book.epub is not a zip archive, as an EPUB is"):
        read_document(b"Chapter 1\n\nText.", name="book.epub")


def test_html_mathml_svg_and_forms_are_not_spoken() -> None:
    html = ('<html><body><h1>Sums</h1><p>Let <math xmlns="http://www.w3.org/1998/Math/MathML"><mi>x</mi>'
            '<mo>=</mo><mn>2</mn></math> be.</p><svg><text>drawn</text></svg><form><button>Go</button></form>'
            "<p>Mathematics is kept.</p></body></html>")
    assert titles_and_texts(html.encode()) == [("Sums", "Let be.\n\nMathematics is kept.")]
