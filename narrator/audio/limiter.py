"""A look-ahead true-peak limiter for one chunk at a time.

Peaks are estimated with 4x oversampling (soxr) as BS.1770 true-peak meters do.
Only samples within 6 dB of the ceiling (band-limited speech does not hide larger
intersample peaks) are looked at: the stretches around them are gathered into one
array and oversampled in one call, with enough context on each side that the
seams do not reach the points measured. The gain each over-peak needs is spread
with a running minimum and a boxcar so it moves smoothly and is never above what
any sample needs; audio away from the peaks is not touched.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from .dsp import db_to_gain, moving_average, running_min

OVERSAMPLE = 4
_CONTEXT = 80  # input samples: soxr's HQ 4x filter reaches about 70 either side
_MARGIN_DB = 6.0
_HOLD_S = 0.005
_SMOOTH_S = 0.002


def true_peak_envelope(samples: np.ndarray, rate: int) -> np.ndarray:
    """Per sample: the largest magnitude at it and at the 4x-interpolated points before the next."""
    if len(samples) == 0:
        return np.zeros(0, dtype=np.float32)
    up = np.asarray(soxr.resample(samples, rate, rate * OVERSAMPLE, quality="HQ"))[: len(samples) * OVERSAMPLE]
    env = np.abs(up).reshape(-1, OVERSAMPLE).max(axis=1)
    peaks: np.ndarray = np.maximum(env, np.abs(samples))
    return peaks


def _interval_peaks(samples: np.ndarray, starts: np.ndarray, rate: int) -> np.ndarray:
    """Largest magnitude among the 4x-interpolated points between ``starts`` (sorted) and ``starts + 1``."""
    n = len(samples)
    breaks = np.flatnonzero(np.diff(starts) > 2 * _CONTEXT)
    firsts = np.r_[starts[0], starts[breaks + 1]]
    lasts = np.r_[starts[breaks], starts[-1]]
    los = np.maximum(firsts - _CONTEXT, 0)
    his = np.minimum(lasts + _CONTEXT + 2, n)
    gathered = np.concatenate([samples[lo:hi] for lo, hi in zip(los.tolist(), his.tolist(), strict=True)])
    up = np.asarray(soxr.resample(gathered, rate, rate * OVERSAMPLE, quality="HQ"))
    up = up[: len(gathered) * OVERSAMPLE].reshape(-1, OVERSAMPLE)
    offsets = np.r_[0, np.cumsum(his - los)[:-1]]
    piece = np.searchsorted(firsts, starts, side="right") - 1
    # All four points: soxr low-passes, so even its point at a sample is not quite the sample.
    return np.asarray(np.abs(up[offsets[piece] + starts - los[piece]]).max(axis=1))


def limit(samples: np.ndarray, rate: int, ceiling_db: float) -> tuple[np.ndarray, float]:
    """``samples`` with no (estimated true) peak above ``ceiling_db``, and the largest reduction in dB.

    Returns the input itself when nothing goes over the ceiling.
    """
    ceiling = db_to_gain(ceiling_db)
    n = len(samples)
    hot = np.flatnonzero(np.abs(samples) > ceiling * db_to_gain(-_MARGIN_DB)) if n else np.zeros(0, np.int64)
    if len(hot) == 0:
        return samples, 0.0
    # The intervals on both sides of every hot sample.
    marks = np.zeros(n + 1, dtype=bool)
    marks[hot] = True
    marks[hot[hot > 0] - 1] = True
    starts = np.flatnonzero(marks[: n - 1])
    peaks = _interval_peaks(samples, starts, rate)
    over_at = [hot, starts, starts + 1]
    over_peak = [np.abs(samples[hot]), peaks, peaks]
    positions = np.concatenate(over_at)
    values = np.concatenate(over_peak)
    keep = values > ceiling
    if not keep.any():
        return samples, 0.0
    positions, needs = positions[keep], ceiling / values[keep]
    out = samples.copy()
    smallest = 1.0
    for lo, hi, mask in _regions(positions, n, _radius(rate)):
        need = np.ones(hi - lo)
        np.minimum.at(need, positions[mask] - lo, needs[mask])
        gain = _gain_curve(need, rate)
        out[lo:hi] *= gain.astype(np.float32)
        smallest = min(smallest, float(gain.min()))
    return out, -20.0 * math.log10(smallest)


def _radius(rate: int) -> tuple[int, int]:
    smooth = max(1, round(_SMOOTH_S * rate))
    return max(smooth, round(_HOLD_S * rate)), smooth


def _gain_curve(need: np.ndarray, rate: int) -> np.ndarray:
    # Every value averaged into gain[i] is a minimum over a window that contains i,
    # so gain[i] <= need[i]: smoothing never lets a peak through.
    hold, smooth = _radius(rate)
    gain: np.ndarray = np.minimum(moving_average(running_min(need, hold), smooth), need)
    return gain


def _regions(positions: np.ndarray, n: int, radius: tuple[int, int]) -> list[tuple[int, int, np.ndarray]]:
    """Stretches of the chunk the gain curve can reach from ``positions``, with a mask of the positions in each.

    Each stretch ends where the curve is back at 1, so processing them apart is the
    same as processing the whole chunk.
    """
    reach = sum(radius) + 1
    marks = np.zeros(n, dtype=bool)
    marks[positions] = True
    order = np.flatnonzero(marks)
    breaks = np.flatnonzero(np.diff(order) > 2 * reach)
    firsts = np.r_[order[0], order[breaks + 1]]
    lasts = np.r_[order[breaks], order[-1]]
    out = []
    for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        lo, hi = max(0, first - reach), min(n, last + reach + 1)
        out.append((lo, hi, (positions >= lo) & (positions < hi)))
    return out
