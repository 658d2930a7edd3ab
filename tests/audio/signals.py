"""Synthetic test audio: tones and speech-like sounds of known length and level."""

from __future__ import annotations

import io
from pathlib import Path

import lameenc
import numpy as np
import soundfile as sf

RATE = 24000


def tone(seconds: float, level_db: float = -20.0, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    """A sine of peak ``level_db`` dBFS that starts at phase zero."""
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (level_db / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float, level_db: float = -20.0, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """Harmonics of a wandering pitch plus noise, in syllable-rate bursts; peak ``level_db`` dBFS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    noise = 0.3 * rng.standard_normal(n)
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0.05, None) ** 0.5
    x = (voiced + noise) * envelope
    return (x / np.max(np.abs(x)) * 10 ** (level_db / 20)).astype(np.float32)


def padded(x: np.ndarray, before: float, after: float, rate: int = RATE) -> np.ndarray:
    return np.concatenate(
        [np.zeros(round(before * rate), np.float32), x, np.zeros(round(after * rate), np.float32)]
    ).astype(np.float32)


def file_bytes(x: np.ndarray, rate: int = RATE, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def mp3_bytes(x: np.ndarray, rate: int = RATE) -> bytes:
    enc = lameenc.Encoder()
    enc.set_bit_rate(64)
    enc.set_in_sample_rate(rate)
    enc.set_channels(1)
    enc.set_quality(2)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    return bytes(enc.encode(pcm)) + bytes(enc.flush())


def write(path: Path, x: np.ndarray, rate: int = RATE, subtype: str | None = None) -> Path:
    sf.write(path, x, rate, subtype=subtype)
    return path


def onsets(y: np.ndarray, threshold: float = 1e-3, rate: int = RATE) -> list[tuple[int, int]]:
    """[start, end) of each run of sound in ``y`` separated by at least 20 ms of silence."""
    loud = np.flatnonzero(np.abs(y) > threshold)
    if len(loud) == 0:
        return []
    gaps = np.flatnonzero(np.diff(loud) > 0.02 * rate)
    starts = np.r_[loud[0], loud[gaps + 1]]
    ends = np.r_[loud[gaps], loud[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
