"""select_chapters: a chapter list like "3-5" or "1,4,7-9" over book.chapters, 1-based."""

from __future__ import annotations

import pytest

from narrator.documents import Book, Chapter, select_chapters
from narrator.errors import InvalidRequest

BOOK = Book("B", "A", "en", None, None, tuple(Chapter(f"C{i}", f"Text {i}.") for i in range(1, 11)))


@pytest.mark.parametrize(("spec", "titles"), [
    ("3-5", ["C3", "C4", "C5"]),
    ("1,4,7-9", ["C1", "C4", "C7", "C8", "C9"]),
    (" 2 , 2, 1 ", ["C1", "C2"]),
    ("9-", ["C9", "C10"]),
    ("10", ["C10"]),
    ("1-10", [f"C{i}" for i in range(1, 11)]),
])  # fmt: skip
def test_selected(spec: str, titles: list[str]) -> None:
    picked = select_chapters(BOOK, spec)
    assert [c.title for c in picked.chapters] == titles
    assert (picked.title, picked.author) == ("B", "A")


@pytest.mark.parametrize(("spec", "message"), [
    ("", "'' is not a chapter list like 3-5 or 1,4,7-9"),
    ("a", "is not a chapter list"),
    ("1,,2", "is not a chapter list"),
    ("0", "'0' is not a range of chapters (they count from 1)"),
    ("5-3", "'5-3' is not a range of chapters"),
    ("11", "chapter 11 is out of range: the book has 10 chapters"),
    ("8-12", "chapter 12 is out of range"),
    ("-3", "is not a chapter list"),
])  # fmt: skip
def test_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        select_chapters(BOOK, spec)
    assert caught.value.field == "chapters" and message in str(caught.value)
