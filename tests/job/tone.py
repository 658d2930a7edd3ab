"""Fakes for the job layer's tests: a tone engine, a store that records URL lifetimes, test audio.

The tone's length follows the chunk's word count (and the ``speed`` setting) and its
pitch follows the chunk's text and the voice of its speaker, so a test can read from
the audio alone which chunk landed where, how long it was, and whose voice it had.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from narrator.audio.types import Audio
from narrator.engines import Engine, SynthesisInput
from narrator.errors import EngineFailed
from narrator.storage import FileStore

RATE = 16000
WORD_SECONDS = 0.08
PITCH_BASE, PITCH_STEP, PITCH_STEPS = 220.0, 30.0, 24
"""Pitches are 220 Hz + 30 Hz steps: far apart for an FFT of a few tenths of a second."""

DAY, WEEK = 24 * 3600, 7 * 24 * 3600


class RecordingStore(FileStore):
    """A file store that remembers the lifetime every presigned URL was asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.presigned: dict[str, int] = {}

    def presigned_url(self, key: str, expires: int) -> str:
        self.presigned[key] = expires
        return super().presigned_url(key, expires)


def tone_seconds(text: str, params: Mapping[str, Any] | None = None) -> float:
    """The tone's length: a fixed time per word (of the text as the engine gets it), over ``speed``."""
    speed = float((params or {}).get("speed", 1.0))
    return round(len(text.split()) * WORD_SECONDS / speed, 4)


def tone_pitch(text: str, voice_digest: str = "") -> float:
    """The pitch of the chunk ``text`` spoken in the voice with this digest ("" for none)."""
    h = int(hashlib.sha256(f"{text}|{voice_digest}".encode()).hexdigest(), 16)
    return PITCH_BASE + PITCH_STEP * (h % PITCH_STEPS)


def item_voice(item: SynthesisInput) -> str:
    """The digest of the voice slot 1 carries (a chunk has one speaker), or ""."""
    voice = item.voices.get(item.speakers[0]) if item.speakers else None
    return voice.digest if voice is not None else ""


class ToneEngine(Engine):
    """Returns a tone for each chunk; records every input. ``fail`` makes it raise instead."""

    def __init__(self, sample_rate: int = RATE) -> None:
        self.sample_rate = sample_rate
        self.inputs: list[SynthesisInput] = []
        self.fail: Exception | None = None

    def synthesize(self, item: SynthesisInput) -> Audio:
        self.inputs.append(item)
        if self.fail is not None:
            raise self.fail
        if not item.text.strip():
            raise EngineFailed(f"chunk {item.index}: nothing to say")
        seconds = tone_seconds(item.text, item.params)
        t = np.arange(round(seconds * self.sample_rate)) / self.sample_rate
        freq = tone_pitch(item.text, item_voice(item))
        return Audio((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), self.sample_rate)


def sine(seconds: float, freq: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def voice_b64(freq: float = 180.0, seconds: float = 0.5, rate: int = RATE) -> str:
    """A base64 WAV reference voice (a tone: voices are checked as audio, not as speech)."""
    return base64.b64encode(wav_bytes(sine(seconds, freq, rate), rate)).decode()


def pitch(samples: np.ndarray, rate: int) -> float:
    """The dominant frequency of ``samples``, to within a few Hz."""
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=max(len(x), 8 * rate)))
    return float(np.argmax(spectrum) * rate / max(len(x), 8 * rate))


def read(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate
