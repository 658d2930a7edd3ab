import struct
import tracemalloc

import numpy as np
import pytest

from narrator.audio import decode, flac_seconds, read_audio, resample
from narrator.engines.base import Audio
from narrator.errors import AudioError, PermanentError

from .signals import RATE, file_bytes, mp3_bytes, tone

ONE_SECOND = tone(1.0, -6.0)


def _lying_wav() -> bytes:
    data = bytearray(file_bytes(ONE_SECOND, subtype="PCM_16"))
    assert data[36:40] == b"data"
    data[40:44] = struct.pack("<I", 10 * len(ONE_SECOND) * 2)  # claims ten seconds
    return bytes(data)


def _nan_wav() -> bytes:
    x = ONE_SECOND.copy()
    x[100] = np.nan
    return file_bytes(x, subtype="FLOAT")


GOOD = [
    ("wav pcm16", file_bytes(ONE_SECOND, subtype="PCM_16"), RATE, 1.0, 0.001),
    ("wav float", file_bytes(ONE_SECOND, subtype="FLOAT"), RATE, 1.0, 0.001),
    ("wav 16k", file_bytes(tone(1.0, -6.0, rate=16000), 16000), 16000, 1.0, 0.001),
    ("flac", file_bytes(ONE_SECOND, fmt="FLAC"), RATE, 1.0, 0.001),
    ("ogg vorbis", file_bytes(ONE_SECOND, fmt="OGG", subtype="VORBIS"), RATE, 1.0, 0.01),
    ("ogg opus", file_bytes(ONE_SECOND, fmt="OGG", subtype="OPUS"), RATE, 1.0, 0.01),
    ("mp3", mp3_bytes(ONE_SECOND), RATE, 1.0, 0.1),
    ("stereo", file_bytes(np.stack([ONE_SECOND, ONE_SECOND], axis=1)), RATE, 1.0, 0.001),
]


@pytest.mark.parametrize(("name", "data", "rate", "seconds", "tolerance"), GOOD, ids=[g[0] for g in GOOD])
def test_decode_accepts(name: str, data: bytes, rate: int, seconds: float, tolerance: float) -> None:
    audio = decode(data, field="voice")
    assert audio.sample_rate == rate
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - seconds) <= tolerance
    assert 0.3 < float(np.max(np.abs(audio.samples))) < 0.6  # -6 dBFS survived, channels averaged not summed


BAD = [
    ("empty", b"", None, "empty"),
    ("random bytes", np.random.default_rng(7).bytes(4000), None, "not readable audio"),
    ("text", b"RIFF this is not really a wave file at all", None, "not readable audio"),
    ("truncated wav", file_bytes(ONE_SECOND)[:20000], None, "truncated"),
    ("header only", file_bytes(ONE_SECOND)[:44], None, "truncated"),
    ("lying header", _lying_wav(), None, "truncated"),
    ("truncated flac", file_bytes(ONE_SECOND, fmt="FLAC")[:3000], None, "audio"),
    ("zero length", file_bytes(np.zeros(0, np.float32)), None, "zero length"),
    ("nan samples", _nan_wav(), None, "NaN"),
    ("too long", file_bytes(ONE_SECOND), 0.5, "longer than the 0.5 s"),
]


@pytest.mark.parametrize(("name", "data", "max_seconds", "message"), BAD, ids=[b[0] for b in BAD])
def test_decode_rejects(name: str, data: bytes, max_seconds: float | None, message: str) -> None:
    with pytest.raises(AudioError) as info:
        decode(data, field="reference_audio", max_seconds=max_seconds)
    assert str(info.value).startswith("reference_audio: ")
    assert message in str(info.value)
    assert isinstance(info.value, PermanentError)


def test_content_decides_not_the_name() -> None:
    mp3 = mp3_bytes(ONE_SECOND)
    assert abs(decode(mp3, field="x.wav").duration - 1.0) < 0.1  # MP3 bytes in a .wav name still decode
    with pytest.raises(AudioError, match=r"voice: content is MP3 audio, not WAV"):
        decode(mp3, field="voice", expect="wav")
    assert decode(file_bytes(ONE_SECOND, fmt="OGG", subtype="OPUS"), expect="opus").sample_rate == RATE


def test_too_long_is_refused_before_decoding() -> None:
    ten_minutes = file_bytes(tone(600.0, rate=8000), 8000, subtype="PCM_16")  # 9.6 MB, 19 MB as float32
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match="longer than"):
            decode(ten_minutes, field="voice", max_seconds=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_read_audio_from_path_checks_the_wav_header(tmp_path) -> None:
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    good.write_bytes(file_bytes(ONE_SECOND))
    bad.write_bytes(_lying_wav())
    assert read_audio(good).duration == 1.0
    with open(good, "rb") as fh:
        assert read_audio(fh).duration == 1.0
    with pytest.raises(AudioError, match="chunk 3: truncated WAV"):
        read_audio(bad, field="chunk 3")
    with pytest.raises(AudioError, match="chunk 4: cannot read"):
        read_audio(tmp_path / "missing.flac", field="chunk 4")


def _peak_frequency(audio: Audio) -> float:
    spectrum = np.abs(np.fft.rfft(audio.samples))
    return float(np.argmax(spectrum)) * audio.sample_rate / len(audio.samples)


@pytest.mark.parametrize(("src", "dst"), [(16000, 24000), (48000, 24000), (22050, 44100), (24000, 24000)])
def test_resample_keeps_length_and_pitch(src: int, dst: int) -> None:
    audio = Audio(tone(1.0, -6.0, 1000.0, rate=src), src)
    out = resample(audio, dst)
    assert out.sample_rate == dst
    assert out.samples.dtype == np.float32
    assert len(out.samples) == round(len(audio.samples) * dst / src)
    assert abs(_peak_frequency(out) - 1000.0) <= 1.0
    if src == dst:
        assert out is audio


def _flac(x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    return file_bytes(x, rate, fmt="FLAC", subtype=subtype)


FLAC_OK = _flac(tone(2.5, -6.0))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (FLAC_OK, 2.5),
        (_flac(tone(0.01, -6.0)), 0.01),  # shorter than the tail that is checked
        (_flac(tone(1.0, -6.0), subtype="PCM_24"), 1.0),
        (_flac(tone(1.0, -6.0, rate=48000), rate=48000), None),  # another rate: decode and resample
        (_flac(np.stack([ONE_SECOND, ONE_SECOND], axis=1)), None),  # stereo: decode to mono
        (file_bytes(ONE_SECOND, subtype="PCM_16"), None),  # WAV
        (FLAC_OK[: len(FLAC_OK) * 3 // 4], None),  # truncated: the last frames do not decode
        (FLAC_OK[:200], None),  # header only
        (b"fLaC" + bytes(100), None),
        (b"", None),
    ],
    ids=["flac", "tiny", "pcm24", "48k", "stereo", "wav", "truncated", "header-only", "junk", "empty"],
)
def test_flac_seconds_passes_only_whole_mono_flac_at_the_rate(data: bytes, expected: float | None) -> None:
    seconds = flac_seconds(data, RATE)
    assert seconds == (pytest.approx(expected, abs=1e-6) if expected is not None else None)


def test_a_truncated_flac_is_left_to_the_full_decoder_which_names_the_fault() -> None:
    with pytest.raises(AudioError, match="chunk"):
        decode(FLAC_OK[: len(FLAC_OK) * 3 // 4], field="chunk")
