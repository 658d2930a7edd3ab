import math

import numpy as np
import pyloudnorm
import pytest

from narrator.audio import integrated_loudness, limit, true_peak_envelope
from narrator.audio.dsp import moving_average, running_min
from narrator.audio.loudness import k_weighting

from .signals import RATE, padded, speechlike, tone

_rng = np.random.default_rng(3)

SIGNALS = [
    ("sine 1 kHz", tone(4.0, -20.0, 1000.0), RATE),
    ("sine 220 Hz", tone(4.0, -10.0, 220.3), RATE),
    ("sine 60 Hz", tone(4.0, -10.0, 60.0), RATE),
    ("sine 5 kHz", tone(4.0, -26.0, 5000.0), RATE),
    ("white noise", (0.1 * _rng.standard_normal(4 * RATE)).astype(np.float32), RATE),
    ("speech-like", speechlike(6.0, -3.0, seed=1), RATE),
    ("speech with pauses", padded(speechlike(2.0, -12.0), 1.0, 1.5), RATE),
    ("speech 44.1 kHz", speechlike(5.0, -6.0, seed=2, rate=44100), 44100),
    ("speech 16 kHz", speechlike(5.0, -6.0, seed=4, rate=16000), 16000),
    ("dc offset", (0.2 + tone(4.0, -20.0, 300.0)).astype(np.float32), RATE),
]


@pytest.mark.parametrize(("name", "x", "rate"), SIGNALS, ids=[s[0] for s in SIGNALS])
def test_meter_agrees_with_pyloudnorm(name: str, x: np.ndarray, rate: int) -> None:
    reference = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert integrated_loudness(x, rate) == pytest.approx(reference, abs=0.05)


@pytest.mark.parametrize("rate", [16000, 24000, 44100, 48000])
def test_k_weighting_is_pyloudnorm_design(rate: int) -> None:
    theirs = pyloudnorm.Meter(rate)._filters.values()
    for (b, a), stage in zip(k_weighting(rate), theirs, strict=True):
        assert np.allclose(b, stage.b) and np.allclose(a, stage.a)


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        ("silence", np.zeros(RATE, np.float32), -math.inf),
        ("empty", np.zeros(0, np.float32), -math.inf),
        ("below the absolute gate", tone(2.0, -90.0), -math.inf),
        ("shorter than one block", tone(0.2, -20.0, 1000.0), -23.06),
    ],
)
def test_meter_edges(name: str, x: np.ndarray, expected: float) -> None:
    assert integrated_loudness(x, RATE) == pytest.approx(expected, abs=0.05)


def _sample_peak_db(x: np.ndarray) -> float:
    return 20 * math.log10(float(np.max(np.abs(x))))


def _spiky() -> np.ndarray:
    x = tone(1.0, -3.0)
    x[RATE // 2 : RATE // 2 + 4] = [1.6, 2.0, -2.0, 1.8]  # about +6 dBFS
    return x


def _intersample() -> np.ndarray:
    # fs/4 at 45 degrees: every sample is at 0.707 of the waveform's peak (+3 dB between samples).
    n = np.arange(RATE)
    return (0.99 * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "x", "ceiling", "limits"),
    [
        ("quiet tone passes", tone(1.0, -12.0), -1.0, False),
        ("hot tone", tone(1.0, 0.0), -1.0, True),
        ("+6 dBFS spike", _spiky(), -1.0, True),
        ("intersample peaks", _intersample(), -1.0, True),
        ("speech at -3 dBTP ceiling", speechlike(3.0, 0.0), -3.0, True),
    ],
)
def test_limiter_keeps_true_peaks_under_the_ceiling(name: str, x: np.ndarray, ceiling: float, limits: bool) -> None:
    y, reduction = limit(x.copy(), RATE, ceiling)
    assert _sample_peak_db(y) <= ceiling + 1e-4
    true_peak = 20 * math.log10(float(true_peak_envelope(y, RATE).max()))
    assert true_peak <= ceiling + 0.05
    assert (reduction > 0) == limits
    if not limits:
        assert np.array_equal(y, x)


def test_limiter_touches_only_the_neighbourhood_of_a_spike() -> None:
    x = _spiky()
    y, _ = limit(x.copy(), RATE, -1.0)
    far = np.r_[0 : RATE // 2 - 1000, RATE // 2 + 1000 : RATE]
    assert np.array_equal(y[far], x[far])


def test_intersample_peaks_are_seen() -> None:
    x = _intersample()
    assert _sample_peak_db(x) < -3.0
    assert 20 * math.log10(float(true_peak_envelope(x, RATE).max())) == pytest.approx(-0.09, abs=0.1)


@pytest.mark.parametrize("radius", [0, 1, 3, 10])
@pytest.mark.parametrize("n", [1, 5, 37, 200])
def test_running_filters_match_naive(radius: int, n: int) -> None:
    x = np.random.default_rng(n + radius).standard_normal(n)
    idx = [np.clip(np.arange(i - radius, i + radius + 1), 0, n - 1) for i in range(n)]
    assert np.allclose(running_min(x, radius), [x[i].min() for i in idx])
    assert np.allclose(moving_average(x, radius), [x[i].mean() for i in idx])
