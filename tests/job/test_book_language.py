"""A book is read in its own language when the request names none and the model speaks it."""

from __future__ import annotations

import pytest

from narrator.job.admission import in_book_language
from narrator.job.book import BookPlan
from narrator.models import load_model_file
from narrator.request import JobRequest
from narrator.settings import PROJECT_WORKFLOWS

VIBE = load_model_file(PROJECT_WORKFLOWS / "vibevoice-large.toml")  # en, zh

CASES = [
    ("the request's own language stands", {"language": "en"}, "zh-CN", "en"),
    ("unset: the book's, when the model speaks it", {}, "zh-CN", "zh"),
    ("unset, a language the model lacks: the default", {}, "de", "en"),
    ("unset, the book says nothing: the default", {}, None, "en"),
]


@pytest.mark.parametrize(("given", "book_language", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_in_book_language(given: dict[str, str], book_language: str | None, expected: str) -> None:
    request = JobRequest.parse({"document": "eA==", **given})
    book = BookPlan(title="", author="", language=book_language, cover=None, cover_type=None, chapters=())
    assert in_book_language(request, book, VIBE).language == expected
