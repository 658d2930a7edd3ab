"""The speech recogniser interface the chunk check uses, and what it gives back.

A recogniser turns a chunk's audio into words with times (``transcribe``) and, where it
can, fits a known word sequence to the audio (``align``: forced alignment, for word
captions and as evidence that the text is there at all). Implementations live beside
this file, one per library, each imported only when it is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

#: Every recogniser takes 16 kHz mono float32 in [-1, 1]; the check resamples once.
RATE = 16000


@dataclass(frozen=True)
class Word:
    """One word and where it lies in the chunk's audio, in seconds."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class Recogniser(Protocol):
    name: str
    """``pocketsphinx``, ``whisper``: what reports and the bench call it."""
    device: str
    """``cpu`` or ``cuda``: a GPU recogniser runs the check on the GPU worker itself."""

    def speaks(self, language: str) -> bool:
        """Whether it can transcribe ``language`` (``en``, ``de``, ``en-GB``)."""

    def transcribe(self, samples: np.ndarray, language: str) -> Transcript:
        """Words heard in ``samples`` (16 kHz mono float32), in order, with their times."""

    def align(self, samples: np.ndarray, words: Sequence[str], language: str) -> tuple[Word | None, ...] | None:
        """``words`` fitted to the audio: one entry per word, None for a word it cannot place
        (not in its dictionary). None when the words cannot be fitted (the audio does not say
        them), and always None from a recogniser without forced alignment (``aligns`` False)."""

    @property
    def aligns(self) -> bool:
        """Whether :meth:`align` does forced alignment (else word times come from the transcript)."""
