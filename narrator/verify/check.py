"""Check one chunk's audio against its text: the signal rules, then the recogniser's.

Pure apart from the recogniser it is given: audio and text in, a :class:`ChunkCheck` out.
"""

from __future__ import annotations

import time

import numpy as np
import soxr

from .compare import Comparison, compare
from .recogniser import RATE, Recogniser, Transcript, Word
from .signals import Signals, measure
from .timing import place
from .verdict import MIN_COVERAGE, ChunkCheck, Limits
from .words import words as split_words

#: Seconds of audio kept after the last sound, tried in turn until the text fits. Trailing silence
#: makes pocketsphinx's aligner miss the end now and then (measured on good chunks: 7 of 15 with
#: 0.15 s of silence left on; 1 in 40 at any one cut; none of 40 trying these three).
_TAILS = (0.05, 0.15, 0.0)
_LEAD = 0.1


def check_audio(
    samples: np.ndarray, rate: int, text: str, limits: Limits, recogniser: Recogniser | None, language: str = "en"
) -> ChunkCheck:
    """``samples`` (mono float32 at ``rate``) against ``text`` (the words the engine was given)."""
    started = time.perf_counter()
    audio = samples.astype(np.float32, copy=False)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE).astype(np.float32, copy=False)
    signals = measure(audio, RATE)
    said = split_words(text)
    reasons = _signal_reasons(signals, len(said), limits)
    spoken = {"seconds": round(signals.seconds, 3), "sound_start": round(signals.sound_start, 3),
              "sound_end": round(signals.sound_start + signals.sound_seconds, 3)}
    if signals.silent or recogniser is None or not recogniser.speaks(language):
        return ChunkCheck(passed=not reasons, reasons=reasons, cost=_since(started), **spoken)
    # The recogniser wants some silence around the words (a joined file keeps only 10 ms of it):
    # the audio gets enough put in front and after, and the times are moved back after.
    lead = max(0.0, _LEAD - signals.sound_start)
    padded = np.concatenate([np.zeros(round(lead * RATE), dtype=np.float32), audio,
                             np.zeros(round(max(_TAILS) * RATE), dtype=np.float32)])
    end = lead + signals.sound_start + signals.sound_seconds
    speech = padded[: round((end + _TAILS[0]) * RATE)]
    placed = _align(padded, end, said, recogniser, language) if recogniser.aligns else None
    if recogniser.aligns and placed is None:
        # Nothing more to learn: a transcript of noise costs the most and says nothing new.
        reasons.append("the text does not fit the audio")
        return ChunkCheck(passed=False, reasons=reasons, score=0.0, recogniser=recogniser.name,
                          cost=_since(started), **spoken)
    transcript = _shifted(recogniser.transcribe(speech, language), lead)
    placed = tuple(_moved(w, lead) for w in placed) if placed is not None else None
    comparison = compare(said, [w.text.lower() for w in transcript.words])
    reasons += _heard_reasons(comparison, recogniser.name, limits)
    times = placed if placed is not None else _times_from(comparison, transcript)
    return ChunkCheck(
        passed=not reasons, reasons=reasons, score=round(comparison.coverage, 3), wer=round(comparison.wer, 3),
        heard=transcript.text, recogniser=recogniser.name, cost=_since(started),
        words=place(text, times, spoken["sound_start"], spoken["sound_end"]), **spoken,
    )


def _align(audio: np.ndarray, end: float, said: list[str], recogniser: Recogniser,
           language: str) -> tuple[Word | None, ...] | None:
    for tail in _TAILS:
        placed = recogniser.align(audio[: round((end + tail) * RATE)], said, language)
        if placed is not None:
            return placed
    return None


def _moved(word: Word | None, by: float) -> Word | None:
    if word is None or not by:
        return word
    return Word(word.text, max(0.0, word.start - by), max(0.0, word.end - by))


def _shifted(transcript: Transcript, by: float) -> Transcript:
    return Transcript(tuple(w for w in (_moved(w, by) for w in transcript.words) if w is not None))


def _signal_reasons(signals: Signals, words: int, limits: Limits) -> list[str]:
    reasons = []
    if signals.silent:
        reasons.append("silent")
    if signals.clipped > limits.max_clipped:
        reasons.append(f"clipped: {signals.clipped:.2%} of samples at full scale")
    shortest, longest = limits.expected(words)
    if not signals.silent and not shortest <= signals.sound_seconds <= longest:
        kind = "short" if signals.sound_seconds < shortest else "long"
        reasons.append(f"too {kind}: {signals.sound_seconds:.1f} s of sound for {words} words "
                       f"(expected {shortest:.1f} to {longest:.1f} s)")
    return reasons


def _heard_reasons(comparison: Comparison, recogniser: str, limits: Limits) -> list[str]:
    reasons = []
    words = len(comparison.matched)
    if comparison.coverage < MIN_COVERAGE.get(recogniser, 0.5):
        heard = sum(m is not None for m in comparison.matched)
        reasons.append(f"heard {heard} of {words} words")
    if words >= 3 and comparison.length_ratio > limits.max_length_ratio:
        reasons.append(f"repeats: heard {comparison.length_ratio:.1f}x the words")
    return reasons


def _times_from(comparison: Comparison, transcript: Transcript) -> list[Word | None]:
    """Without forced alignment: each text word takes the time of the heard word it matched."""
    return [transcript.words[j] if j is not None else None for j in comparison.matched]


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
