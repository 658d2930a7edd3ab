"""Output formats: streaming sinks for the join, and one-shot :func:`encode`.

wav and flac (16-bit) and opus (in OGG) go through libsndfile; mp3 through
lameenc; m4b (AAC in MP4, chapters and tags) through PyAV, the optional ``book``
extra (see :mod:`.m4b`). None needs a system ffmpeg.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Protocol

import lameenc
import numpy as np
import soundfile as sf

from ..errors import AudioError
from .book_meta import BookTags
from .dsp import resample
from .m4b import AAC_RATES, M4bSink
from .types import Audio

FORMATS = ("wav", "flac", "mp3", "opus", "m4b")
_SOUNDFILE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
DEFAULT_MP3_KBPS = 96
_CONTENT_TYPES = {
    "wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg", "m4b": "audio/mp4",
}

Target = str | os.PathLike[str] | BinaryIO


class Sink(Protocol):
    """Takes float32 mono samples in [-1, 1] in order; ``close`` finishes the file."""

    sample_rate: int

    def write(self, samples: np.ndarray) -> None: ...

    def close(self) -> None: ...


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise AudioError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def content_type(fmt: str) -> str:
    """The MIME type of a file of ``fmt``."""
    return _CONTENT_TYPES[check_format(fmt)]


def output_rate(fmt: str, rate: int) -> int:
    """The rate a file of ``fmt`` is written at when ``rate`` is asked for.

    Opus, MP3 and AAC (m4b) allow only some rates: the next one up (or the highest) is used.
    """
    allowed = {"opus": OPUS_RATES, "mp3": MP3_RATES, "m4b": AAC_RATES}.get(check_format(fmt))
    if allowed is None or rate in allowed:
        return rate
    return next((r for r in allowed if r >= rate), allowed[-1])


def open_sink(
    target: Target, fmt: str, rate: int, *, mp3_kbps: int = DEFAULT_MP3_KBPS, tags: BookTags | None = None
) -> Sink:
    """A sink writing ``fmt`` at ``rate`` (which must already suit the format, see :func:`output_rate`).

    ``tags`` (title, author, cover) go into an m4b; the other formats have no use for them.
    """
    if output_rate(fmt, rate) != rate:
        raise AudioError(f"format: {fmt} cannot be written at {rate} Hz")
    if fmt == "m4b":
        return M4bSink(target, rate, tags or BookTags())
    if fmt == "mp3":
        return Mp3Sink(target, rate, mp3_kbps)
    return SoundFileSink(target, fmt, rate)


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as 16-bit integers, scaled as libsndfile reads them back (x / 32768)."""
    scaled = np.multiply(samples, 32768.0, dtype=np.float32)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    pcm: np.ndarray = np.rint(scaled, out=scaled).astype(np.int16)
    return pcm


class SoundFileSink:
    def __init__(self, target: Target, fmt: str, rate: int) -> None:
        container, subtype = _SOUNDFILE[fmt]
        self.sample_rate = rate
        self._pcm16 = subtype == "PCM_16"
        # Through a Python file: libsndfile would fsync a path it opened itself on close,
        # which costs more than the whole write of a temporary file about to be uploaded.
        self._owned: BinaryIO | None = None
        try:
            if isinstance(target, str | os.PathLike):
                self._owned = target = Path(target).open("w+b")
            self._file = sf.SoundFile(target, "w", samplerate=rate, channels=1, format=container, subtype=subtype)
        except (sf.LibsndfileError, OSError) as exc:
            if self._owned is not None:
                self._owned.close()
            raise AudioError(f"cannot open {fmt} output: {exc}") from exc

    def write(self, samples: np.ndarray) -> None:
        if self._pcm16:
            # libsndfile's own float-to-short conversion is four times slower than numpy's.
            samples = pcm16(samples)
        try:
            self._file.write(samples)
        except (sf.LibsndfileError, OSError) as exc:
            raise AudioError(f"cannot write audio: {exc}") from exc

    def close(self) -> None:
        try:
            self._file.close()
            if self._owned is not None:
                self._owned.close()
        except (sf.LibsndfileError, OSError) as exc:
            raise AudioError(f"cannot finish audio file: {exc}") from exc


class Mp3Sink:
    def __init__(self, target: Target, rate: int, kbps: int) -> None:
        self.sample_rate = rate
        self._encoder = lameenc.Encoder()
        self._encoder.set_bit_rate(kbps)
        self._encoder.set_in_sample_rate(rate)
        self._encoder.set_channels(1)
        self._encoder.set_quality(2)
        self._owned = isinstance(target, str | os.PathLike)
        try:
            self._out: BinaryIO = Path(target).open("wb") if isinstance(target, str | os.PathLike) else target
        except OSError as exc:
            raise AudioError(f"cannot open mp3 output: {exc}") from exc

    def write(self, samples: np.ndarray) -> None:
        self._put(bytes(self._encoder.encode(pcm16(samples).astype("<i2", copy=False).tobytes())))

    def close(self) -> None:
        self._put(bytes(self._encoder.flush()))
        if self._owned:
            self._out.close()

    def _put(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except OSError as exc:
            raise AudioError(f"cannot write audio: {exc}") from exc


def encode(audio: Audio, fmt: str, *, mp3_kbps: int = DEFAULT_MP3_KBPS) -> bytes:
    """One short piece of audio as the bytes of a ``fmt`` file (resampled if the format needs it)."""
    audio = resample(audio, output_rate(fmt, audio.sample_rate))
    buf = io.BytesIO()
    sink = open_sink(buf, fmt, audio.sample_rate, mp3_kbps=mp3_kbps)
    sink.write(np.clip(audio.samples, -1.0, 1.0))
    sink.close()
    return buf.getvalue()
