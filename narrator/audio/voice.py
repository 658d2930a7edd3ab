"""Reference voices: any audio in, one canonical mono 16-bit WAV out.

The output depends only on the input bytes and the arguments, so its sha256 can
name the voice everywhere (storage keys, the chunk cache).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from ..errors import AudioError
from .decode import decode
from .dsp import db_to_gain, fade_edges, resample, silence_threshold, sound_bounds
from .types import Audio

_TRIM_RELATIVE_DB = -40.0
_TRIM_FLOOR_DB = -60.0
_KEEP_S = 0.05
_FADE_S = 0.005
_PEAK_DB = -1.0


def validate_voice(data: bytes, *, field: str, max_seconds: float, expect: str | None = None) -> Audio:
    """Decode a reference voice and refuse what :func:`normalise_voice` would refuse, without resampling.

    Admission runs this, so a voice that staging would reject is refused before any work is queued.
    """
    audio = decode(data, field=field, max_seconds=max_seconds, expect=expect)
    _check_sound(audio.samples, field)
    return audio


def _check_sound(samples: np.ndarray, field: str) -> tuple[int, int]:
    first, last = sound_bounds(samples, silence_threshold(samples, _TRIM_RELATIVE_DB, _TRIM_FLOOR_DB))
    if last <= first:
        raise AudioError(f"{field}: the voice is silent")
    return first, last


def normalise_voice(
    data: bytes,
    *,
    field: str,
    max_seconds: float,
    sample_rate: int = 24000,
    cap_seconds: float | None = None,
) -> bytes:
    """Mono 16-bit WAV bytes at ``sample_rate``: silence trimmed, peaks under -1 dBFS.

    Input longer than ``max_seconds`` is an error (checked before decoding); the
    result is cut to ``cap_seconds`` when that is given (references past 10-30 s
    rarely help a cloning model).
    """
    decoded = decode(data, field=field, max_seconds=max_seconds)
    return normalise_decoded(decoded, field=field, sample_rate=sample_rate, cap_seconds=cap_seconds)


def normalise_decoded(
    decoded: Audio, *, field: str, sample_rate: int = 24000, cap_seconds: float | None = None
) -> bytes:
    """:func:`normalise_voice` of a voice already decoded (and checked) by :func:`validate_voice`."""
    audio = resample(decoded, sample_rate)
    samples = audio.samples
    first, last = _check_sound(samples, field)
    keep = round(_KEEP_S * sample_rate)
    body = samples[max(0, first - keep) : min(len(samples), last + keep)].copy()
    if cap_seconds is not None:
        body = body[: max(1, round(cap_seconds * sample_rate))]
    peak = float(np.max(np.abs(body)))
    ceiling = db_to_gain(_PEAK_DB)
    if peak > ceiling:
        body *= np.float32(ceiling / peak)
    fade_edges(body, round(_FADE_S * sample_rate))
    buf = io.BytesIO()
    sf.write(buf, body, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
