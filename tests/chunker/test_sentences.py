"""Sentence segmentation and the cuts inside an over-long sentence."""

from __future__ import annotations

import pytest

from narrator.chunker.sentences import clauses, graphemes, sentences, words


def split(text: str) -> list[str]:
    return [text[s:e] for s, e in sentences(text, 0, len(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Dr. Smith met Mr. and Mrs. Jones.", ["Dr. Smith met Mr. and Mrs. Jones."]),
        ("We met at St. Paul's. It rained.", ["We met at St. Paul's.", "It rained."]),
        ("Fruit, e.g. apples, i.e. the red ones. Next.", ["Fruit, e.g. apples, i.e. the red ones.", "Next."]),
        ("Bring pens, paper, etc. The rest is here.", ["Bring pens, paper, etc.", "The rest is here."]),
        ("Pens, paper, etc. and more.", ["Pens, paper, etc. and more."]),
        ("The U.S. Army arrived. Then it left.", ["The U.S. Army arrived.", "Then it left."]),
        ("Come at 5 p.m. The door is open.", ["Come at 5 p.m.", "The door is open."]),
        ("Come at 5 p.m. sharp.", ["Come at 5 p.m. sharp."]),
        ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
        ("George W. Bush spoke.", ["George W. Bush spoke."]),
        ("Pi is 3.14 or so. Really.", ["Pi is 3.14 or so.", "Really."]),
        ("It cost $3.50. Cheap.", ["It cost $3.50.", "Cheap."]),
        ("Wait... what? No.", ["Wait... what?", "No."]),
        ("Wait... What? No.", ["Wait...", "What?", "No."]),
        ("He paused… Then he spoke.", ["He paused…", "Then he spoke."]),
        ("Wait . . . for it.", ["Wait . . . for it."]),
        ('He said, "Stop." Then he left.', ['He said, "Stop."', "Then he left."]),
        ('"Help!" she cried. Nobody came.', ['"Help!" she cried.', "Nobody came."]),
        ("(It was late.) We slept.", ["(It was late.)", "We slept."]),
        ("He asked “why?” She smiled.", ["He asked “why?”", "She smiled."]),
        ("See No. 5 and p. 12 for more.", ["See No. 5 and p. 12 for more."]),
        ("Really?! Yes!!", ["Really?!", "Yes!!"]),
        ("the end. the start.", ["the end.", "the start."]),
        ("approx. three hours.", ["approx. three hours."]),
        ("Smith et al. found it.", ["Smith et al. found it."]),
        ("He was born in 1999. 2000 came.", ["He was born in 1999.", "2000 came."]),
        ("Visit example.com. It is free.", ["Visit example.com.", "It is free."]),
        ("no punctuation at all here", ["no punctuation at all here"]),
        ("今天天气很好。我们去公园吧！好吗？", ["今天天气很好。", "我们去公园吧！", "好吗？"]),
        ("他说：「你好。」然后走了。", ["他说：「你好。」", "然后走了。"]),
        ("Hi 😀. Bye 👋!", ["Hi 😀.", "Bye 👋!"]),
        ("", []),
        ("   ", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert split(text) == expected


def test_sentences_within_a_range() -> None:
    text = "xx One. Two. yy"
    assert [text[s:e] for s, e in sentences(text, 3, 12)] == ["One.", "Two."]


def test_protected_ranges_are_never_cut() -> None:
    text = "Say ab. cd now. Next."
    assert [text[s:e] for s, e in sentences(text, 0, len(text), [(4, 10)])] == ["Say ab. cd now.", "Next."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one, two; three: four", ["one,", "two;", "three:", "four"]),
        ("wind—rain—snow", ["wind—", "rain—", "snow"]),
        ("before - after", ["before -", "after"]),
        ("3,000 people, then more", ["3,000 people,", "then more"]),
        ("我们，你们；他们", ["我们，", "你们；", "他们"]),
    ],
)
def test_clauses(text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in clauses(text, 0, len(text))] == expected


def test_words_never_cut_inside_a_word() -> None:
    text = "  alpha beta\n\tgamma  "
    assert [text[s:e] for s, e in words(text, 0, len(text))] == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("一二三四五六七", 3, ["一二三", "四五六", "七"]),
        ("一二，三四五六", 4, ["一二，", "三四五六"]),
        ("ab👩\u200d👩\u200d👧cd", 3, ["ab", "👩\u200d👩\u200d👧", "cd"]),  # a family emoji is one cluster
        ("e\u0301e\u0301e\u0301", 3, ["e\u0301", "e\u0301", "e\u0301"]),
        ("🇫🇷🇩🇪🇮🇹", 3, ["🇫🇷", "🇩🇪", "🇮🇹"]),
    ],
)
def test_graphemes_cut_between_clusters(text: str, max_chars: int, expected: list[str]) -> None:
    assert [text[s:e] for s, e in graphemes(text, 0, len(text), max_chars)] == expected
