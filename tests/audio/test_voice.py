import hashlib
import io

import numpy as np
import pytest
import soundfile as sf

from narrator.audio import normalise_voice
from narrator.errors import AudioError

from .signals import file_bytes, mp3_bytes, padded, speechlike

VOICE = padded(speechlike(3.0, -12.0, seed=9), 1.0, 2.0)


def _info(data: bytes) -> tuple[sf._SoundFileInfo, np.ndarray]:
    return sf.info(io.BytesIO(data)), sf.read(io.BytesIO(data), dtype="float32")[0]


INPUTS = [
    ("wav 24k", file_bytes(VOICE), 24000, 3.1),
    ("flac 24k to 16k", file_bytes(VOICE, fmt="FLAC"), 16000, 3.11),
    ("stereo 44.1k", file_bytes(np.stack([VOICE, VOICE], axis=1), 24000), 24000, 3.1),
    ("mp3", mp3_bytes(VOICE), 24000, 3.2),
]


@pytest.mark.parametrize(("name", "data", "rate", "seconds"), INPUTS, ids=[i[0] for i in INPUTS])
def test_voice_becomes_trimmed_mono_16_bit_wav(name: str, data: bytes, rate: int, seconds: float) -> None:
    out = normalise_voice(data, field="voice", max_seconds=60, sample_rate=rate)
    info, samples = _info(out)
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, rate)
    assert 3.0 <= info.duration <= seconds  # 1 s of leading and 2 s of trailing silence are gone
    assert float(np.max(np.abs(samples))) <= 10 ** (-1 / 20)


def test_same_input_same_bytes() -> None:
    data = file_bytes(np.stack([VOICE, 0.5 * VOICE], axis=1), 44100)
    digests = {hashlib.sha256(normalise_voice(data, field="voice", max_seconds=60)).hexdigest() for _ in range(3)}
    assert len(digests) == 1
    other = normalise_voice(file_bytes(VOICE * 0.5, 44100), field="voice", max_seconds=60)
    assert hashlib.sha256(other).hexdigest() not in digests


def test_loud_voice_is_brought_under_full_scale_and_capped() -> None:
    out = normalise_voice(file_bytes(VOICE * 20, subtype="FLOAT"), field="voice", max_seconds=60, cap_seconds=1.5)
    info, samples = _info(out)
    assert info.duration == pytest.approx(1.5, abs=1e-3)
    assert float(np.max(np.abs(samples))) == pytest.approx(10 ** (-1 / 20), abs=1e-3)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("silent", file_bytes(np.zeros(24000, np.float32)), "voice: the voice is silent"),
        ("too long", file_bytes(np.zeros(24000 * 11, np.float32)), "voice: 11.0 s is longer than the 10 s allowed"),
        ("not audio", b"hello" * 100, "voice: not readable audio"),
    ],
)
def test_bad_voices(name: str, data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        normalise_voice(data, field="voice", max_seconds=10)
