"""EPUB 2 and 3 read into chapters: spine order, titles, nested sections, matter, notes, alt text, metadata."""

from __future__ import annotations

import pytest

from narrator.documents import Book, read_document

from .build import AUSTEN, DICKENS, GRIMM, JPEG, POE, RAVEN, Epub, Page, paras

NOTEREF = ('<p>I heard all things in the heaven and in the earth.<a epub:type="noteref" href="#n1">1</a> '
           'Many things in hell.<sup><a href="notes.xhtml#n2">2</a></sup> How, then, am I mad?</p>'
           '<aside epub:type="footnote" id="n1"><p>A note that is never spoken.</p></aside>')  # fmt: skip


def full_book() -> Epub:
    """An EPUB 3 book with every part a real one has: cover, title page, copyright, nav, parts, notes."""
    return Epub(
        title="The Tell-Tale Heart and Other Tales",
        creators=("Edgar Allan Poe", "Charles Dickens"),
        cover=JPEG,
        pages=[
            Page("cover.xhtml", '<div><img src="images/cover.jpg" alt="cover"/></div>'),
            Page("title.xhtml", "<h1>The Tell-Tale Heart</h1><p>by Edgar Allan Poe</p>"),
            Page("rights.xhtml", "<p>This ebook is in the public domain.</p>", body_attrs='epub:type="copyright-page"'),
            Page("heart.xhtml", f'<section epub:type="chapter"><h1>The Tell-Tale Heart</h1>{paras(POE, 8)}'
                 f"{NOTEREF}</section>"),
            Page("two.xhtml", f'<h2 id="s1">Two Cities</h2>{paras(DICKENS, 6)}'
                 f'<h2 id="s2">A Wife</h2><p><img src="i/raven.png" alt="A raven perched upon a bust"/></p>'
                 f'{paras(AUSTEN, 6)}<p><img src="images/ornament_03.png" alt="ornament_03.png"/></p>'
                 f'<h2 id="s3">The Raven</h2>{paras(RAVEN, 6)}'),
            Page("notes.xhtml", '<section epub:type="endnotes"><p id="n2">Hell, that is.</p></section>',
                 linear=False),
        ],
        nav=[("heart.xhtml", "The Tell-Tale Heart", 1), ("two.xhtml", "Part Two", 1),
             ("two.xhtml#s1", "Two Cities", 2), ("two.xhtml#s2", "A Wife", 2), ("two.xhtml#s3", "The Raven", 2)],
        nav_in_spine=True,
        landmarks=[("cover.xhtml", "cover"), ("heart.xhtml", "bodymatter")],
    )


@pytest.fixture(scope="module")
def book() -> Book:
    return read_document(full_book().build(), name="tales.epub")


def test_chapters_in_order_with_nav_titles_matter_left_out(book: Book) -> None:
    # "Part Two" and "Two Cities" both point at the top of two.xhtml: one place, one title for both.
    assert [c.title for c in book.chapters] == ["The Tell-Tale Heart", "Part Two. Two Cities", "A Wife", "The Raven"]
    assert {c.kind for c in book.chapters} == {"body"}


def test_a_file_the_nav_points_into_several_times_is_split_at_its_anchors(book: Book) -> None:
    two, wife, raven = book.chapters[1:]
    assert two.text.startswith("It was the best of times") and AUSTEN not in two.text
    assert wife.text.startswith("A raven perched upon a bust") and RAVEN not in wife.text
    assert raven.text.count(RAVEN) == 6


def test_titles_are_not_repeated_in_the_text(book: Book) -> None:
    assert all(not c.text.startswith(c.title) for c in book.chapters)


def test_footnote_markers_and_bodies_are_not_spoken(book: Book) -> None:
    heart = book.chapters[0].text
    assert "heaven and in the earth. Many things in hell. How, then, am I mad?" in heart
    assert "never spoken" not in heart and "Hell, that is" not in " ".join(c.text for c in book.chapters)


def test_meaningful_alt_text_is_spoken_file_names_are_not(book: Book) -> None:
    text = " ".join(c.text for c in book.chapters)
    assert "A raven perched upon a bust" in text
    assert "ornament" not in text and "cover" not in text.lower().split()


def test_paragraphs_are_separated_by_one_blank_line(book: Book) -> None:
    paragraphs = book.chapters[0].text.split("\n\n")
    assert paragraphs[0] == POE and len(paragraphs) == 9
    assert all(p == " ".join(p.split()) for p in paragraphs)


def test_metadata_and_cover(book: Book) -> None:
    assert book.title == "The Tell-Tale Heart and Other Tales"
    assert book.author == "Edgar Allan Poe & Charles Dickens"
    assert book.language == "en"
    assert (book.cover, book.cover_type) == (JPEG, "image/jpeg")


def test_keep_matter_keeps_front_and_back_matter_marked() -> None:
    book = read_document(full_book().build(), keep_matter=True)
    kinds = [(c.kind, c.title or c.text[:20]) for c in book.chapters]
    assert kinds == [
        ("front", "The Tell-Tale Heart"),  # the title page: its heading is its title
        ("front", "This ebook is in the"),  # the copyright page
        ("body", "The Tell-Tale Heart"),
        ("body", "Part Two. Two Cities"),
        ("body", "A Wife"),
        ("body", "The Raven"),
    ]
    # The cover page (an image with no speakable alt), the nav document and the notes (not linear, bodies
    # dropped) have nothing to say even when kept.


def test_linear_no_is_matter() -> None:
    epub = Epub(pages=[Page("a.xhtml", f"<h1>One</h1>{paras(POE, 5)}"),
                       Page("b.xhtml", f"<h1>Aside</h1>{paras(RAVEN, 5)}", linear=False),
                       Page("c.xhtml", f"<h1>Two</h1>{paras(DICKENS, 5)}")])  # fmt: skip
    assert [c.title for c in read_document(epub.build()).chapters] == ["One", "Two"]
    kept = read_document(epub.build(), keep_matter=True).chapters
    assert [(c.title, c.kind) for c in kept] == [("One", "body"), ("Aside", "back"), ("Two", "body")]


def test_german_book_keeps_its_letters_and_language() -> None:
    epub = Epub(title="Kinder- und Hausmärchen", creators=("Jacob Grimm", "Wilhelm Grimm"), language="de",
                pages=[Page("frosch.xhtml", f"<h1>Der Froschkönig</h1>{paras(GRIMM, 4)}")],
                nav=[("frosch.xhtml", "Der Froschkönig oder der eiserne Heinrich", 1)])  # fmt: skip
    book = read_document(epub.build(), name="maerchen.epub")
    assert (book.title, book.author, book.language) == ("Kinder- und Hausmärchen", "Jacob Grimm & Wilhelm Grimm", "de")
    (chapter,) = book.chapters
    assert chapter.title == "Der Froschkönig oder der eiserne Heinrich"
    assert chapter.text.split("\n\n")[0] == GRIMM and "daß" in chapter.text and "Wünschen" in chapter.text


def test_epub2_with_ncx_only_guide_and_meta_cover() -> None:
    epub = Epub(version="2.0", cover=JPEG,
                pages=[Page("cover.html", '<img src="images/cover.jpg" alt=""/>'),
                       Page("toc.html", '<p><a href="ch1.html">One</a></p><p><a href="ch2.html">Two</a></p>'
                            '<p><a href="ch3.html">Three</a></p>'),
                       Page("ch1.html", f"<h2>Chapter I</h2>{paras(DICKENS, 5)}"),
                       Page("ch2.html", f"<h2>Chapter II</h2>{paras(AUSTEN, 5)}"),
                       Page("ch3.html", f"<h2>Chapter III</h2>{paras(POE, 5)}")],
                ncx=[("ch1.html", "I. The Period", 1), ("ch2.html", "II. The Mail", 1), ("ch3.html", "III. Night", 1)],
                guide=[("cover.html", "cover")])  # fmt: skip
    book = read_document(epub.build())
    assert [c.title for c in book.chapters] == ["I. The Period", "II. The Mail", "III. Night"]
    assert book.chapters[0].text.startswith("Chapter I\n\nIt was the best")  # the heading says more than the title
    assert (book.cover, book.cover_type) == (JPEG, "image/jpeg")


def test_no_navigation_titles_from_first_headings() -> None:
    epub = Epub(pages=[Page("a.xhtml", f"<h1>Chapter I</h1><h2>The Period</h2>{paras(DICKENS, 5)}"),
                       Page("b.xhtml", f"<p>An epigraph.</p><h3>The Raven</h3>{paras(RAVEN, 5)}"),
                       Page("c.xhtml", paras(POE, 5))])  # fmt: skip
    book = read_document(epub.build())
    assert [c.title for c in book.chapters] == ["Chapter I. The Period", "The Raven", ""]
    assert book.chapters[1].text.startswith("An epigraph.\n\nOnce upon")


def test_spine_order_not_file_order() -> None:
    epub = Epub(pages=[Page("z.xhtml", f"<h1>First</h1>{paras(POE, 5)}"),
                       Page("a.xhtml", f"<h1>Second</h1>{paras(AUSTEN, 5)}"),
                       Page("m.xhtml", f"<h1>Third</h1>{paras(RAVEN, 8)}")],
                spine=["m.xhtml", "z.xhtml", "a.xhtml"])  # fmt: skip
    assert [c.title for c in read_document(epub.build()).chapters] == ["Third", "First", "Second"]


def test_a_file_the_nav_does_not_name_continues_the_chapter_before() -> None:
    epub = Epub(pages=[Page("c1a.xhtml", f"<h1>One</h1>{paras(POE, 5)}"), Page("c1b.xhtml", paras(RAVEN, 2)),
                       Page("c2.xhtml", f"<h1>Two</h1>{paras(AUSTEN, 5)}")],
                nav=[("c1a.xhtml", "One", 1), ("c2.xhtml", "Two", 1)])  # fmt: skip
    one, two = read_document(epub.build()).chapters
    assert one.text.endswith(f"{POE}\n\n{RAVEN}\n\n{RAVEN}") and two.title == "Two"


def test_short_pages_before_the_first_chapter_are_front_matter() -> None:
    epub = Epub(pages=[Page("p1.xhtml", "<p>To my mother.</p>"), Page("p2.xhtml", "<h1>Part One</h1>"),
                       Page("p3.xhtml", f"<h1>Chapter 1</h1>{paras(POE, 5)}"),
                       Page("p4.xhtml", "<h1>Chapter 2</h1><p>Brief.</p>")])  # fmt: skip
    chapters = read_document(epub.build(), keep_matter=True).chapters
    assert [(c.kind, c.title, c.text[:14]) for c in chapters] == [
        ("front", "", "To my mother."),
        ("body", "Part One", "Part One"),  # a title alone is a chapter that says itself
        ("body", "Chapter 1", POE[:14]),
        ("body", "Chapter 2", "Brief."),  # after the first chapter, short is not matter
    ]


def test_sloppy_markup_scripts_styles_and_entities() -> None:
    body = ("<style>p { color: red }</style><script>alert('no')</script><h1>Odd</h1><p>Unclosed &amp; sloppy"
            "<p>Second&nbsp;one&mdash;here<br/>and a line<div>Block in a p</div></b></i>" + paras(POE, 5))
    (chapter,) = read_document(Epub(pages=[Page("a.xhtml", body)]).build()).chapters
    assert chapter.text.startswith("Unclosed & sloppy\n\nSecond one—here\nand a line\n\nBlock in a p\n\nTrue!")
    assert "alert" not in chapter.text and "color" not in chapter.text


def test_inline_anchors_do_not_cut_paragraphs_nav_anchors_do() -> None:
    body = (f'<p>{POE} <a id="filepos123"></a>{RAVEN} <span epub:type="pagebreak" id="p7" title="7">7</span>'
            f'{AUSTEN}</p><h2 id="two">Two</h2>{paras(DICKENS, 5)}<p>Three follows <a id="three"/>{RAVEN}</p>')
    epub = Epub(pages=[Page("a.xhtml", f"<h1>One</h1>{body}")],
                nav=[("a.xhtml", "One", 1), ("a.xhtml#two", "Two", 1), ("a.xhtml#three", "Three", 1)])
    one, two, three = read_document(epub.build()).chapters
    assert one.text == f"{POE} {RAVEN} {AUSTEN}"
    assert two.text.endswith(f"{DICKENS}\n\nThree follows") and three.text == RAVEN


def test_sections_of_one_file_keep_their_own_types() -> None:
    body = (f'<section epub:type="frontmatter preface" id="pre"><h1>Preface</h1>{paras(AUSTEN, 5)}</section>'
            f'<section epub:type="bodymatter chapter" id="c1"><h1>Chapter 1</h1>{paras(POE, 5)}</section>')
    nav = [("all.xhtml#pre", "Preface", 1), ("all.xhtml#c1", "Chapter 1", 1)]
    epub = Epub(pages=[Page("all.xhtml", body)], nav=nav)
    assert [c.title for c in read_document(epub.build()).chapters] == ["Chapter 1"]
    kept = read_document(epub.build(), keep_matter=True).chapters
    assert [(c.title, c.kind) for c in kept] == [("Preface", "front"), ("Chapter 1", "body")]


def test_one_file_with_front_body_and_back_sections_and_anchored_landmarks() -> None:
    """As The Waste Land sample is built: the whole poem in one file, its parts marked by sections."""
    body = ('<section epub:type="frontmatter" id="fm"><section epub:type="titlepage" id="tp"><h1>The Raven</h1>'
            '<p>Edgar Allan Poe</p></section></section><section epub:type="bodymatter" id="bm">'
            f'<section id="st1"><h2>Stanza One</h2>{paras(RAVEN, 4)}</section>'
            f'<section id="st2"><h2>Stanza Two</h2>{paras(POE, 4)}</section></section>'
            '<section epub:type="backmatter" id="back"><section id="about"><h2>About</h2><p>Written in 1845.</p>'
            "</section></section>")
    epub = Epub(pages=[Page("raven.xhtml", body)],
                nav=[("raven.xhtml#st1", "Stanza One", 1), ("raven.xhtml#st2", "Stanza Two", 1),
                     ("raven.xhtml#about", "About", 1)],
                landmarks=[("raven.xhtml#fm", "frontmatter"), ("raven.xhtml#bm", "bodymatter"),
                           ("raven.xhtml#back", "backmatter")])
    kept = read_document(epub.build(), keep_matter=True).chapters
    assert [(c.kind, c.title) for c in kept] == [
        ("front", "The Raven"), ("body", "Stanza One"), ("body", "Stanza Two"), ("back", "About")]
    assert [c.title for c in read_document(epub.build()).chapters] == ["Stanza One", "Stanza Two"]
