import numpy as np
import pytest

from narrator.audio import FORMATS, content_type, decode, encode, output_rate
from narrator.engines.base import Audio
from narrator.errors import AudioError

from .signals import speechlike

CASES = [
    ("wav", 24000, 24000, 0.0, "audio/wav"),
    ("flac", 22050, 22050, 0.0, "audio/flac"),
    ("mp3", 24000, 24000, 0.1, "audio/mpeg"),
    ("mp3", 20000, 22050, 0.1, "audio/mpeg"),
    ("opus", 24000, 24000, 0.01, "audio/ogg"),
    ("opus", 44100, 48000, 0.01, "audio/ogg"),
]


@pytest.mark.parametrize(("fmt", "rate", "written", "tolerance", "mime"), CASES)
def test_encode_round_trips(fmt: str, rate: int, written: int, tolerance: float, mime: str) -> None:
    audio = Audio(speechlike(1.5, -6.0, rate=rate), rate)
    data = encode(audio, fmt)
    back = decode(data, field="out", expect="opus" if fmt == "opus" else fmt)
    assert output_rate(fmt, rate) == back.sample_rate == written
    assert back.duration == pytest.approx(1.5, abs=tolerance + 1e-9)
    assert content_type(fmt) == mime
    if tolerance == 0.0:
        assert np.max(np.abs(back.samples - audio.samples)) < 1e-4  # lossless, 16-bit


def test_unknown_format() -> None:
    assert FORMATS == ("wav", "flac", "mp3", "opus", "m4b")
    with pytest.raises(AudioError, match="format: 'ogg'"):
        encode(Audio(np.zeros(100, np.float32), 24000), "ogg")
