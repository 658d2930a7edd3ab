"""Where a book's chapters start in the joined output: from the middle of the pause before them."""

from __future__ import annotations

import pytest

from narrator.audio.join import ChunkSpan, chapter_marks
from narrator.errors import AudioError

RATE = 1000
# Three chunks: sound at 0-2 s, 3-5 s (a 1 s pause before), 7-8 s (a 2 s chapter pause before); 9 s in all.
SPANS = [ChunkSpan(0, 0, 2000, RATE), ChunkSpan(1, 3000, 5000, RATE), ChunkSpan(2, 7000, 8000, RATE)]

CASES = [
    ("no chapters", [], []),
    ("one chapter: the whole file", [(0, "All")], [("All", 0.0, 9.0)]),
    ("two: the second from the middle of its pause", [(0, "One"), (2, "Two")], [("One", 0.0, 6.0), ("Two", 6.0, 9.0)]),
    ("every chunk its own", [(0, "a"), (1, "b"), (2, "c")], [("a", 0.0, 2.5), ("b", 2.5, 6.0), ("c", 6.0, 9.0)]),
]


@pytest.mark.parametrize(("chapters", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_chapter_marks(chapters: list[tuple[int, str]], expected: list[tuple[str, float, float]]) -> None:
    marks = chapter_marks(SPANS, chapters, 9000, RATE)
    assert [(m.title, m.start, m.end) for m in marks] == expected


def test_a_chapter_past_the_last_chunk_is_an_error() -> None:
    with pytest.raises(AudioError, match="chapter 2 starts at chunk 3, and there are 3 chunks"):
        chapter_marks(SPANS, [(0, "One"), (3, "Two")], 9000, RATE)
