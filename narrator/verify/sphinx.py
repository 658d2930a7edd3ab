"""English speech recognition on any CPU, offline: pocketsphinx and the model in its wheel.

pocketsphinx is BSD-licensed and ships a US English acoustic model, dictionary and
language model, so this needs no download and no configuration. Two decoders: one
transcribes with the language model (narrow beams and one pass: about 0.13 of the
audio's length on a 2-core CPU, bench/bench_verify.py), one fits the chunk's own words
to the audio (forced alignment: about 0.02), which gives word times for captions and
fails outright when the audio does not say the text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

import numpy as np

from ..errors import EngineFailed, ModelError
from .recogniser import RATE, Transcript, Word

log = logging.getLogger(__name__)

_FRAMES_PER_SECOND = 100
# One pass with narrow beams: the check needs the words, not the last point of accuracy,
# and the second passes double the cost (measured: 0.26 -> 0.13 of real time, same verdicts).
_FAST = {"fwdflat": False, "bestpath": False, "maxhmmpf": 3000, "beam": 1e-40, "wbeam": 1e-30, "pbeam": 1e-40}
_ALTERNATE = re.compile(r"\(\d+\)$")


class SphinxRecogniser:
    name = "pocketsphinx"
    device = "cpu"
    aligns = True

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # a core dependency: only a broken install lands here
            raise ModelError(f"pocketsphinx is not installed: {exc}") from exc
        self._decoder = Decoder(samprate=RATE, loglevel="FATAL", **_FAST)
        self._aligner = Decoder(samprate=RATE, loglevel="FATAL", lm=None)
        # A decoder is one search in progress: one chunk at a time per decoder.
        self._lock = threading.Lock()

    def speaks(self, language: str) -> bool:
        return language.split("-")[0].lower() == "en"

    def transcribe(self, samples: np.ndarray, language: str) -> Transcript:
        with self._lock:
            try:
                self._decode(self._decoder, samples)
                segments = list(self._decoder.seg() or ())
            except RuntimeError as exc:
                raise EngineFailed(f"pocketsphinx could not decode: {exc}") from exc
        return Transcript(tuple(_words(segments)))

    def align(self, samples: np.ndarray, words: Sequence[str], language: str) -> tuple[Word | None, ...] | None:
        """``words`` fitted to the audio; words the dictionary lacks are left out of the fit (None)."""
        with self._lock:
            known = [i for i, w in enumerate(words) if self._aligner.lookup_word(w) is not None]
            if not known:
                return tuple(None for _ in words)
            try:
                self._aligner.set_align_text(" ".join(words[i] for i in known))
                self._decode(self._aligner, samples)
                segments = list(self._aligner.seg() or ())
            except RuntimeError as exc:
                raise EngineFailed(f"pocketsphinx could not align: {exc}") from exc
        found = _words(segments)
        if len(found) != len(known):
            return None  # no path through the text to the end of the audio: it does not say them
        placed: list[Word | None] = [None] * len(words)
        for i, word in zip(known, found, strict=True):
            placed[i] = word
        return tuple(placed)

    @staticmethod
    def _decode(decoder: object, samples: np.ndarray) -> None:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()  # type: ignore[attr-defined]
        decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
        decoder.end_utt()  # type: ignore[attr-defined]


def _words(segments: Sequence[object]) -> list[Word]:
    out = []
    for seg in segments:
        name = str(seg.word)  # type: ignore[attr-defined]
        if name.startswith(("<", "[", "+")):
            continue  # silence, noise and filler models
        start = seg.start_frame / _FRAMES_PER_SECOND  # type: ignore[attr-defined]
        end = (seg.end_frame + 1) / _FRAMES_PER_SECOND  # type: ignore[attr-defined]
        out.append(Word(_ALTERNATE.sub("", name), start, end))
    return out
