"""What the audio itself shows, before any recogniser: sound or silence, clipping, length.

Plain numpy over 16 kHz mono float32. Levels are per 20 ms frame, so a breath or a
click does not count as speech and a pause does not count as silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 320  # 20 ms at 16 kHz
#: A frame is sound when its level is within this of the loudest frame, and above the floor.
RELATIVE_DB = -35.0
FLOOR_DBFS = -55.0
#: A sample this close to full scale counts as clipped.
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class Signals:
    seconds: float
    """The chunk's whole length."""
    sound_start: float
    """Where the first frame of sound starts."""
    sound_seconds: float
    """From the first frame of sound to the last: the length the speaking rate is judged by."""
    active_seconds: float
    """Frames of sound in all."""
    peak_dbfs: float
    clipped: float
    """Share of samples at full scale."""

    @property
    def silent(self) -> bool:
        return self.active_seconds < 0.1


def measure(samples: np.ndarray, rate: int) -> Signals:
    n = len(samples) // FRAME
    seconds = len(samples) / rate
    if n == 0:
        return Signals(seconds, 0.0, 0.0, 0.0, -120.0, 0.0)
    frames = samples[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-6))
    loudest = float(level.max())
    active = level > max(FLOOR_DBFS, loudest + RELATIVE_DB)
    hits = np.flatnonzero(active)
    frame_s = FRAME / rate
    sound = (hits[-1] - hits[0] + 1) * frame_s if len(hits) else 0.0
    peak = float(np.max(np.abs(samples)))
    return Signals(
        seconds=seconds,
        sound_start=float(hits[0] * frame_s) if len(hits) else 0.0,
        sound_seconds=float(sound),
        active_seconds=float(len(hits) * frame_s),
        peak_dbfs=20 * float(np.log10(max(peak, 1e-6))),
        clipped=float(np.mean(np.abs(samples) >= CLIP_LEVEL)),
    )
