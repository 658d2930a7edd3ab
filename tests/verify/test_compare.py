"""Word comparison, word times and signal measures: pure functions, from tables of cases."""

from __future__ import annotations

import numpy as np
import pytest

from narrator.verify.compare import compare
from narrator.verify.recogniser import Word
from narrator.verify.signals import measure
from narrator.verify.timing import phrases, place, tokens
from narrator.verify.verdict import Limits
from narrator.verify.words import words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("It’s the dog's bone.", ["it's", "the", "dog's", "bone"]),
        ("Speaker 1: Hi there.\nSpeaker 2: Hello.", ["hi", "there", "hello"]),
        ("[1]: Bonjour à tous", ["bonjour", "à", "tous"]),
        ("— ... !", []),
        ("route 66", ["route", "66"]),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "heard", "coverage", "wer", "ratio"),
    [
        ("a b c d", "a b c d", 1.0, 0.0, 1.0),
        ("a b c d", "a x c d", 0.75, 0.25, 1.0),
        ("a b c d", "a b", 0.5, 0.5, 0.5),
        ("a b c d", "a b c d a b c d", 1.0, 1.0, 2.0),
        ("a b c d", "", 0.0, 1.0, 0.0),
        ("a b c d", "d c b a", 0.25, 1.0, 1.0),  # heard out of order counts once
    ],
)
def test_compare(text: str, heard: str, coverage: float, wer: float, ratio: float) -> None:
    result = compare(text.split(), heard.split())
    assert result.coverage == pytest.approx(coverage)
    assert result.wer == pytest.approx(wer)
    assert result.length_ratio == pytest.approx(ratio)


def test_compare_marks_which_words_matched() -> None:
    assert compare(["a", "b", "c"], ["x", "b", "c"]).matched == (None, 1, 2)


def test_tokens_keep_punctuation_and_join_pieces_that_say_nothing() -> None:
    assert tokens("Well — it's here.") == [("Well —", ["well"]), ("it's", ["it's"]), ("here.", ["here"])]


def test_place_fills_unplaced_words_between_their_neighbours() -> None:
    times = [Word("one", 0.0, 0.5), None, None, Word("four", 2.0, 2.5)]
    timed = place("One, two three four.", times, start=0.0, end=3.0)
    assert [(t.text, t.start, t.end) for t in timed] == [
        ("One,", 0.0, 0.5), ("two", 0.5, 1.25), ("three", 1.25, 2.0), ("four.", 2.0, 2.5),
    ]


def test_place_unplaced_edges_use_the_sound_bounds() -> None:
    timed = place("a b", [None, None], start=1.0, end=2.0)
    assert [(t.start, t.end) for t in timed] == [(1.0, 1.5), (1.5, 2.0)]


def test_phrases_end_at_punctuation_and_length() -> None:
    timed = place("one two, three four five six seven eight nine ten.",
                  [Word(w, i, i + 1) for i, w in enumerate("one two three four five six seven eight nine ten".split())],
                  0.0, 10.0)
    assert [(p.text, p.start, p.end) for p in phrases(timed)] == [
        ("one two,", 0.0, 2.0), ("three four five six seven eight nine ten.", 2.0, 10.0),
    ]


def test_signals_find_the_sound_and_clipping() -> None:
    rate = 16000
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)
    audio = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate // 2)]).astype(np.float32)
    s = measure(audio, rate)
    assert s.seconds == pytest.approx(2.0)
    assert s.sound_start == pytest.approx(0.5, abs=0.02)
    assert s.sound_seconds == pytest.approx(1.0, abs=0.04)
    assert not s.silent and s.clipped == 0.0
    assert measure(np.zeros(rate, dtype=np.float32), rate).silent
    assert measure(np.clip(audio * 4, -1, 1).astype(np.float32), rate).clipped > 0.1


@pytest.mark.parametrize(("words_", "speed", "shortest", "longest"), [(10, 1.0, 2.5, 9.0), (10, 2.0, 1.0, 4.75)])
def test_limits_scale_with_words_and_speed(words_: int, speed: float, shortest: float, longest: float) -> None:
    lo, hi = Limits(seconds_per_word=0.5, speed=speed).expected(words_)
    assert (lo, hi) == pytest.approx((shortest, longest))
