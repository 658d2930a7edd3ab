"""The check on real speech: good chunks of the embedded voice pass, the same chunks broken fail.

Each breakage (silence, first half only, another sentence's audio, white noise, the chunk
twice, twice the speed) must fail for the reason that describes it; bench/bench_verify.py
measures the same on a larger corpus and reports the rates.
"""

from __future__ import annotations

import pytest

from narrator.verify import ChunkCheck, Limits, check_audio
from narrator.verify.sphinx import SphinxRecogniser
from tests.support.speech_corpus import SENTENCES, Sample, corpus, local_model

SOME = SENTENCES[:3] + SENTENCES[20:21]  # three sentences, and a short one
# What each breakage must be failed for (one of these phrases among the reasons).
EXPECTED = {
    "silence": ("silent",),
    "first half": ("too short", "does not fit"),
    "another sentence": ("does not fit", "heard"),
    "white noise": ("does not fit",),
    "twice": ("repeats", "too long"),
    "speed x2": ("too short", "does not fit"),
}


@pytest.fixture(scope="module")
def checked() -> list[tuple[Sample, ChunkCheck]]:
    spec = local_model()
    recogniser = SphinxRecogniser()
    out = []
    for sample in corpus(SOME, speeds=(1.0, 0.8, 1.25)):
        limits = Limits(seconds_per_word=60 / spec.words_per_minute, speed=sample.speed)
        out.append((sample, check_audio(sample.samples, sample.rate, sample.text, limits, recogniser)))
    return out


def test_good_chunks_pass_at_every_speed(checked: list[tuple[Sample, ChunkCheck]]) -> None:
    good = [(s, c) for s, c in checked if s.kind == "good"]
    assert len(good) == len(SOME) * 3
    failed = [(s.text, s.speed, c.reasons) for s, c in good if not c.passed]
    assert failed == []
    assert all(c.score is not None and c.score >= 0.2 and c.recogniser == "pocketsphinx" for _, c in good)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_broken_chunks_fail_for_their_reason(checked: list[tuple[Sample, ChunkCheck]], kind: str) -> None:
    broken = [(s, c) for s, c in checked if s.kind == kind]
    assert len(broken) == len(SOME)
    for sample, check in broken:
        assert not check.passed, (sample.text, check)
        assert any(phrase in reason for reason in check.reasons for phrase in EXPECTED[kind]), check.reasons


def test_a_good_chunk_gets_its_words_timed_in_order(checked: list[tuple[Sample, ChunkCheck]]) -> None:
    sample, check = next((s, c) for s, c in checked if s.kind == "good")
    assert [w.text for w in check.words] == sample.text.split()
    starts = [w.start for w in check.words]
    assert starts == sorted(starts)
    assert 0 <= check.words[0].start < 0.5
    assert check.words[-1].end == pytest.approx(check.sound_end, abs=0.4)
    assert all(w.end > w.start for w in check.words)


def test_a_language_it_does_not_speak_gets_the_signal_checks_only() -> None:
    sample = next(corpus(SOME[:1]))
    spec = local_model()
    check = check_audio(sample.samples, sample.rate, sample.text, Limits(60 / spec.words_per_minute),
                        SphinxRecogniser(), language="de")
    assert check.passed and check.recogniser is None and check.score is None and check.words == []
