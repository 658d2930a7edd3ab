"""A chunk's check: its figures, the reasons it fails (if it does), and its words' times.

The rules, each measured on the corpus in bench/bench_verify.py (good chunks of the
embedded voice and the same chunks broken on purpose):

- **silent**: under 0.1 s of sound in all;
- **clipped**: more than 0.1% of samples at full scale;
- **length**: the sound (first to last sound frame) against the words at the model's
  speaking rate (``words_per_minute``, over the chunk's speed): outside 0.6x to 1.7x,
  with half a second's slack for short chunks. Cut-off, doubled and sped-up chunks fail here;
- **does not fit**: forced alignment of the text to the audio finds no path (a recogniser
  that aligns: pocketsphinx). Another sentence, noise and cut-off chunks fail here;
- **heard**: coverage (the share of the text's words the recogniser heard, in order) under
  the recogniser's floor (pocketsphinx 0.2, Whisper 0.7): another sentence's audio that
  still fits the text (pocketsphinx hears a quarter of a good chunk's words at worst);
- **repeats**: more than 1.5 words heard per word written.

The score is the coverage (None when no recogniser speaks the chunk's language: then
only the signal rules apply, and the record says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from .timing import Timed

#: Coverage floors by recogniser: a strong recogniser hears most words of a good chunk.
MIN_COVERAGE = {"pocketsphinx": 0.2, "whisper": 0.7}


@dataclass(frozen=True)
class Limits:
    seconds_per_word: float
    """At speed 1: 60 / the model's words per minute."""
    speed: float = 1.0
    min_rate: float = 0.6
    max_rate: float = 1.7
    slack_seconds: float = 0.5
    max_clipped: float = 0.001
    max_length_ratio: float = 1.5

    def expected(self, words: int) -> tuple[float, float]:
        """The shortest and longest sound (seconds) a chunk of ``words`` words may have."""
        nominal = words * self.seconds_per_word / self.speed
        return max(0.0, nominal * self.min_rate - self.slack_seconds), nominal * self.max_rate + self.slack_seconds


class ChunkCheck(BaseModel):
    """One attempt at one chunk, checked. Stored as JSON beside the job's chunks."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: list[str] = Field(default_factory=list)
    """Why it failed, one short phrase per rule broken; empty when it passed."""
    score: float | None = None
    """Coverage: the share of the text's words heard (None: no recogniser for the language)."""
    wer: float | None = None
    heard: str = ""
    """What the recogniser heard."""
    recogniser: str | None = None
    seconds: float = 0.0
    sound_start: float = 0.0
    sound_end: float = 0.0
    words: list[Timed] = Field(default_factory=list)
    """The text's words with their times in the chunk's audio (empty without a recogniser)."""
    cost: float = 0.0
    """Seconds the check took."""

    @property
    def rank(self) -> tuple[int, int, float]:
        """Higher is better: passed, fewer rules broken, more words heard."""
        return (int(self.passed), -len(self.reasons), self.score if self.score is not None else 0.0)
