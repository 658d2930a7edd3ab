"""Small sample-level operations shared by decode, join and the voice normaliser."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import soxr

from .types import Audio


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def resample(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` (soxr, high quality); the same object when the rate already matches."""
    if audio.sample_rate == rate:
        return audio
    out = soxr.resample(audio.samples, audio.sample_rate, rate, quality="HQ")
    return Audio(np.ascontiguousarray(out, dtype=np.float32), rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array into contiguous float32."""
    if samples.ndim == 2:
        samples = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def peak(samples: np.ndarray) -> float:
    """Largest magnitude (NaN if any sample is NaN), without a temporary array."""
    return max(float(samples.max()), -float(samples.min())) if len(samples) else 0.0


def silence_threshold(samples: np.ndarray, relative_db: float, floor_db: float) -> float:
    """Below this magnitude a sample counts as silence: ``relative_db`` under the peak, never under ``floor_db``."""
    return max(peak(samples) * db_to_gain(relative_db), db_to_gain(floor_db))


def sound_bounds(samples: np.ndarray, threshold: float) -> tuple[int, int]:
    """``[first, last + 1)`` of the samples louder than ``threshold``; ``(0, 0)`` when none is.

    Scans in from both ends, so the cost is the silence's length, not the chunk's.
    """
    n = len(samples)
    first = next((i for i in _loud_blocks(samples, threshold, range(0, n, _SCAN))), None)
    if first is None:
        return 0, 0
    block = samples[first : first + _SCAN]
    first += int(_loud(block, threshold).argmax())
    last = next(i for i in _loud_blocks(samples, threshold, range((n - 1) // _SCAN * _SCAN, -1, -_SCAN)))
    block = samples[last : last + _SCAN]
    last += len(block) - int(_loud(block, threshold)[::-1].argmax())
    return first, last


_SCAN = 2048


def _loud(block: np.ndarray, threshold: float) -> np.ndarray:
    return (block > threshold) | (block < -threshold)


def _loud_blocks(samples: np.ndarray, threshold: float, starts: range) -> Iterator[int]:
    for start in starts:
        if _loud(samples[start : start + _SCAN], threshold).any():
            yield start


def fade_edges(samples: np.ndarray, length: int) -> None:
    """Raised-cosine fade-in and fade-out of ``length`` samples, in place.

    The two curves are complementary (sin^2 + cos^2 = 1), so overlapping a faded tail
    with a faded head is a constant-gain crossfade.
    """
    length = min(length, len(samples) // 2)
    if length <= 0:
        return
    ramp = _ramp(length)
    samples[:length] *= ramp
    samples[-length:] *= ramp[::-1]


def _ramp(length: int) -> np.ndarray:
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return np.sin(0.5 * np.pi * t).astype(np.float32) ** 2


def running_min(values: np.ndarray, radius: int) -> np.ndarray:
    """``out[i] = min(values[i - radius : i + radius + 1])`` (edges repeat), in O(n).

    van Herk / Gil-Werman: prefix and suffix minima within blocks of the window's size.
    """
    if radius <= 0 or len(values) == 0:
        return values.copy()
    n = len(values)
    width = 2 * radius + 1
    extra = (-(n + 2 * radius)) % width
    padded = np.pad(values, (radius, radius + extra), mode="edge").reshape(-1, width)
    prefix = np.minimum.accumulate(padded, axis=1).ravel()
    suffix = np.minimum.accumulate(padded[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[width - 1 : width - 1 + n])


def moving_average(values: np.ndarray, radius: int) -> np.ndarray:
    """Centred boxcar of ``2 * radius + 1`` samples (edges repeat)."""
    if radius <= 0 or len(values) == 0:
        return values.copy()
    padded = np.pad(values.astype(np.float64), (radius + 1, radius), mode="edge")
    sums = np.cumsum(padded)
    width = 2 * radius + 1
    return (sums[width:] - sums[:-width]) / width
