"""Bytes or files in, validated mono float32 :class:`Audio` out.

Everything libsndfile reads (WAV, FLAC, OGG Vorbis/Opus, MP3 and more) is accepted,
recognised by content, never by name. Every failure is an :class:`AudioError`
naming the input (``field``) so a request error points at what to fix.
"""

from __future__ import annotations

import io
import math
import os
import struct
from pathlib import Path
from typing import BinaryIO

import soundfile as sf

from ..errors import AudioError
from .dsp import peak, to_mono
from .types import Audio

Source = str | os.PathLike[str] | bytes | BinaryIO
"""A chunk or input: a path, the bytes of a file, or an open binary file."""

_KINDS = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "W64": "wav", "FLAC": "flac", "MP3": "mp3", "OGG": "ogg"}
_EXPECT_ALIASES = {"opus": "ogg", "vorbis": "ogg", "oga": "ogg", "wave": "wav", "mpeg": "mp3"}
_UNKNOWN_SIZE = 0xFFFFFFFF
_HEAD_BYTES = 1 << 16
_TAIL_FRAMES = 4096
_MAX_FLAC_FRAMES = 1 << 32  # beyond this the header's length is a placeholder, not a length


def decode(data: bytes, *, field: str = "audio", max_seconds: float | None = None, expect: str | None = None) -> Audio:
    """Decode an audio file's bytes into mono float32.

    ``max_seconds`` is checked against the header before the samples are decoded.
    ``expect`` (``wav``, ``flac``, ``mp3``, ``ogg``/``opus``) rejects content of any
    other kind, for inputs whose name promises a format.
    """
    if not data:
        raise AudioError(f"{field}: empty (zero bytes)")
    _check_wav_length(data[:_HEAD_BYTES], len(data), field)
    return _read(io.BytesIO(data), field, max_seconds, expect)


def probe(data: bytes, *, field: str = "audio") -> str:
    """The container format of an audio file's bytes, read from its header alone; AudioError if none."""
    if not data:
        raise AudioError(f"{field}: empty (zero bytes)")
    try:
        return str(sf.info(io.BytesIO(data)).format)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{field}: not readable audio ({_reason(exc)})") from exc
    except (RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{field}: not readable audio ({exc})") from exc


def flac_seconds(data: bytes, sample_rate: int) -> float | None:
    """The length of ``data`` if it is already a chunk as the pipeline stores it (mono FLAC at
    ``sample_rate``), else None.

    Checked without decoding it all: the header, then its last frames, which must decode
    (a truncated file fails there). Decoding and re-encoding a 70 s chunk costs about 80 ms;
    this costs well under 1 ms. None also covers any doubt (a header without a length, a
    failed seek): the caller then decodes in full, which reports what is wrong.
    """
    if data[:4] != b"fLaC":
        return None
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.format != "FLAC" or f.channels != 1 or f.samplerate != sample_rate:
                return None
            frames: int = f.frames
            if not 0 < frames < _MAX_FLAC_FRAMES:
                return None
            tail = min(frames, _TAIL_FRAMES)
            f.seek(frames - tail)
            if len(f.read(tail, dtype="int16")) != tail:
                return None
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None
    return frames / sample_rate


def read_audio(source: Source, *, field: str = "audio", max_seconds: float | None = None) -> Audio:
    """:func:`decode` for a path, bytes or an open binary file."""
    if isinstance(source, bytes | bytearray | memoryview):
        return decode(bytes(source), field=field, max_seconds=max_seconds)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                head = fh.read(12)
                if head[:4] == b"RIFF":
                    head += fh.read(_HEAD_BYTES)
        except OSError as exc:
            raise AudioError(f"{field}: cannot read {path}: {exc.strerror or exc}") from exc
        if size == 0:
            raise AudioError(f"{field}: empty (zero bytes)")
        _check_wav_length(head, size, field)
        return _read(path, field, max_seconds, None)
    return decode(source.read(), field=field, max_seconds=max_seconds)


def _read(file: Path | BinaryIO, field: str, max_seconds: float | None, expect: str | None) -> Audio:
    try:
        with sf.SoundFile(file) as f:
            kind = _KINDS.get(f.format, f.format.lower())
            want = _EXPECT_ALIASES.get(expect.lower(), expect.lower()) if expect else None
            if want and kind != want:
                raise AudioError(f"{field}: content is {kind.upper()} audio, not {want.upper()}")
            rate, frames = f.samplerate, f.frames
            if frames <= 0:
                raise AudioError(f"{field}: no audio (zero length)")
            if max_seconds is not None and frames / rate > max_seconds:
                raise AudioError(f"{field}: {frames / rate:.1f} s is longer than the {max_seconds:g} s allowed")
            limit = frames if max_seconds is None else min(frames, int(max_seconds * rate) + 1)
            samples = f.read(limit, dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{field}: not readable audio ({_reason(exc)})") from exc
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile's own checks on odd files
        raise AudioError(f"{field}: not readable audio ({exc})") from exc
    if len(samples) < limit and kind != "mp3":  # MP3 frame counts are estimates
        raise AudioError(f"{field}: truncated: the header promises {frames} frames, only {len(samples)} decode")
    if len(samples) == 0:
        raise AudioError(f"{field}: no audio (zero length)")
    mono = to_mono(samples)
    if not math.isfinite(peak(mono)):  # NaN and inf survive max/min: no temporary array
        raise AudioError(f"{field}: contains NaN or infinite samples")
    return Audio(mono, rate)


def _reason(exc: sf.LibsndfileError) -> str:
    text = getattr(exc, "error_string", "") or str(exc)
    return text.rstrip(".")


def _check_wav_length(head: bytes, size: int, field: str) -> None:
    """Reject a RIFF WAVE whose data chunk promises more bytes than the file holds.

    libsndfile quietly shortens such files to what is there; a truncated upload or a
    header that lies must be an error instead.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        chunk_id, chunk_size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt " and body + 14 <= len(head):
            block_align = struct.unpack_from("<H", head, body + 12)[0]
        if chunk_id == b"data":
            if chunk_size == _UNKNOWN_SIZE or not block_align:
                return  # written to a pipe: the length was never known
            present = size - body
            if chunk_size > present:
                raise AudioError(
                    f"{field}: truncated WAV: the header promises {chunk_size // block_align} frames, "
                    f"the file holds {max(present, 0) // block_align}"
                )
            return
        pos = body + chunk_size + (chunk_size & 1)
