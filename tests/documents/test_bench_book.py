"""bench/bench_book.py on a small book: it builds a valid EPUB and reports its figure."""

from __future__ import annotations

from bench.bench_book import build_epub, epub_rows
from narrator.documents import read_document


def test_bench_epub_reads_back_as_built() -> None:
    book = read_document(build_epub(words=8000, chapters=4))
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter 2", "Chapter 3", "Chapter 4"]
    assert all(1900 <= c.words <= 2100 for c in book.chapters)


def test_bench_rows() -> None:
    (label, seconds, unit, target, ratio), _ = epub_rows(words=20_000, chapters=5, repeat=1)
    assert "target < 2 s" in label and unit == "s" and target == 2.0
    assert seconds is not None and ratio is not None and 0 < seconds < 2.0 and ratio == seconds / 2.0
