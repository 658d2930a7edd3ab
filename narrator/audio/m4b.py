"""M4B audiobooks: AAC-LC in MP4, mono, with tags, a cover and chapter marks.

Written through PyAV (the optional ``book`` extra: its wheels bundle FFmpeg), imported
only here and only when a book is written or read.

Chapters are known only once the join is done, but FFmpeg's MP4 muxer writes the
QuickTime chapter track (the one Apple Books reads) into the file when the header is
written, from the chapters it has then; only the Nero ``chpl`` list is taken at the
trailer. So :class:`M4bSink` encodes into a temporary ADTS stream as the samples come,
and ``close`` copies the AAC packets (no re-encoding) into the target with the chapters,
tags and cover set before the header: both chapter lists, exact. ADTS, not MP4, in
between: it keeps no per-packet index in memory (an MP4 muxer holds ~80 bytes a packet,
70 MB for 10 hours), so only the final file's muxer holds one.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from ..errors import AudioError
from .book_meta import (
    BookTags,
    ChapterMark,
    at,
    chapter_title,
    check_chapters,
    image_kind,
    iso639_2,
)

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.stream import Stream

    from .encode import Target

log = logging.getLogger(__name__)

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_FRAME = 1024
"""Samples per AAC-LC frame: chapter starts are exact to this."""
DEFAULT_KBPS = 64
MISSING_EXTRA = "format: m4b needs the 'book' extra: pip install 'narrator[book]'"
_MUXER = "mp4"  # FFmpeg's "ipod" muxer refuses a cover (MJPEG/PNG) stream; "mp4" with brand M4B takes both
_RAW = "adts"  # the temporary stream's muxer; FFmpeg's demuxer for it is "aac"
_BRAND = "M4B "


def load_av() -> ModuleType:
    """PyAV, or an :class:`AudioError` naming the extra that brings it."""
    try:
        import av
    except ImportError as exc:
        raise AudioError(MISSING_EXTRA) from exc
    return av


class M4bSink:
    """A :class:`~narrator.audio.encode.Sink` writing an M4B; ``set_chapters`` any time before ``close``."""

    def __init__(self, target: Target, rate: int, tags: BookTags | None = None, *, kbps: int = DEFAULT_KBPS) -> None:
        av = load_av()
        if rate not in AAC_RATES:
            raise AudioError(f"format: m4b cannot be written at {rate} Hz (AAC rates: {AAC_RATES})")
        self.sample_rate = rate
        self._target = target
        self._tags = tags or BookTags()
        self._marks: list[ChapterMark] = []
        self._written = 0
        self._timing = _Timing(rate)
        self._closed = False
        # Beside the output when it is a path: the caller sized that disk for the book.
        folder = Path(target).parent if isinstance(target, str | os.PathLike) else None
        self._tmp: BinaryIO = tempfile.TemporaryFile(prefix="narrator-m4b-", dir=folder)
        try:
            self._out: OutputContainer = av.open(self._tmp, "w", format=_RAW)
            stream = self._out.add_stream("aac", rate=rate, layout="mono")
            stream.bit_rate = kbps * 1000
        except (av.FFmpegError, ValueError) as exc:
            self._tmp.close()
            raise AudioError(f"cannot open m4b output: {exc}") from exc
        self._stream = stream

    def write(self, samples: np.ndarray) -> None:
        av = load_av()
        block = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1)
        if not block.shape[1]:
            return
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._written
        self._written += block.shape[1]
        try:
            self._out.mux(self._timing.seen(self._stream.encode(frame)))
        except (av.FFmpegError, OSError) as exc:
            raise AudioError(f"cannot write audio: {exc}") from exc

    def set_chapters(self, marks: Sequence[ChapterMark]) -> None:
        """The chapters, in order, contiguous; checked against the audio's length at ``close``."""
        self._marks = check_chapters(marks, self.sample_rate)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        av = load_av()
        try:
            try:
                self._out.mux(self._timing.seen(self._stream.encode(None)))
                self._out.close()
            except (av.FFmpegError, OSError) as exc:
                raise AudioError(f"cannot finish audio file: {exc}") from exc
            if not self._timing.packets:
                raise AudioError("m4b: no audio was written")
            check_chapters(self._marks, self.sample_rate, self._written)
            self._tmp.seek(0)
            _remux(self._tmp, self._target, self.sample_rate, self._timing, self._tags, self._marks)
        finally:
            self._tmp.close()


class _Timing:
    """The encoder's packet times, which ADTS does not keep: the first packet's (negative: the
    encoder's priming, which MP4's edit list hides), and the last one's length (the rest of
    the samples; ADTS would say a whole frame). Every other packet is one frame."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.first = 0
        self.packets = 0
        self.last = AAC_FRAME

    def seen(self, packets: list[Any]) -> list[Any]:
        for packet in packets:
            if not self.packets:
                self.first = self._samples(packet.pts, packet.time_base)
            self.packets += 1
            self.last = self._samples(packet.duration, packet.time_base)
        return packets

    def _samples(self, value: int, base: Any) -> int:
        return round(Fraction(value * base.numerator * self.rate, base.denominator))  # Fraction or av 19's AVRational


def _remux(
    source: BinaryIO, target: Target, rate: int, timing: _Timing, tags: BookTags, marks: list[ChapterMark]
) -> None:
    """Copy the AAC packets of ``source`` into ``target`` with chapters, tags and cover set first."""
    av = load_av()
    owned = isinstance(target, str | os.PathLike)
    # faststart (the index before the audio: playable while downloading) rewrites a file FFmpeg opened itself.
    options = {"brand": _BRAND, **({"movflags": "+faststart"} if owned else {})}
    try:
        with av.open(source, "r", format="aac") as src, av.open(
            str(target) if owned else target, "w", format=_MUXER, container_options=options
        ) as out:
            audio = src.streams.audio[0]
            stream = out.add_stream_from_template(audio)
            _tag(out, stream, tags)
            out.set_chapters(_chapters(marks, rate))
            cover = _cover(out, tags)
            count = 0
            for packet in src.demux(audio):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.time_base = Fraction(1, rate)
                packet.pts = packet.dts = timing.first + count * AAC_FRAME
                packet.duration = timing.last if count == timing.packets - 1 else AAC_FRAME
                packet.stream = stream
                out.mux(packet)
                count += 1
            if count != timing.packets:
                raise AudioError(f"m4b: {timing.packets} AAC packets were written, {count} read back")
            if cover is not None:
                out.mux(cover)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise AudioError(f"cannot write m4b: {exc}") from exc


def _tag(out: OutputContainer, stream: Stream, tags: BookTags) -> None:
    meta = {
        "title": tags.title,  # ©nam
        "album": tags.title,  # ©alb: players list books by album
        "artist": tags.author,  # ©ART
        "album_artist": tags.author,  # aART
        "comment": tags.comment,  # ©cmt
        "genre": "Audiobook",
    }
    out.metadata.update({k: v for k, v in meta.items() if v})
    language = iso639_2(tags.language)
    if language:
        stream.metadata["language"] = language  # the audio track's mdhd: the one place MP4 keeps a language


def _chapters(marks: list[ChapterMark], rate: int) -> list[dict[str, Any]]:
    return [
        {
            "id": k,
            "start": at(m.start, rate),
            "end": at(m.end, rate),
            "time_base": Fraction(1, rate),
            "metadata": {"title": chapter_title(m.title, k)},
        }
        for k, m in enumerate(marks, 1)
    ]


def _cover(out: OutputContainer, tags: BookTags) -> Any:
    """Add the cover as an attached picture (MP4 ``covr``); its one packet, or None."""
    if not tags.cover:
        return None
    kind = image_kind(tags.cover)
    if kind is None or (tags.cover_type and tags.cover_type != f"image/{kind}"):
        # A missing cover should not cost a finished book: it is left out, loudly.
        log.warning("cover left out: MP4 takes a JPEG or PNG", extra={"cover_type": tags.cover_type})
        return None
    av = load_av()
    try:
        image = av.open(io.BytesIO(tags.cover), "r", format=f"{kind}_pipe")
        packet = next(p for p in image.demux(image.streams.video[0]) if p.size)
        stream = out.add_stream_from_template(image.streams.video[0])
    except (av.FFmpegError, StopIteration, IndexError, ValueError) as exc:
        log.warning("cover left out: the image cannot be read", extra={"error": str(exc)})
        return None
    stream.disposition = av.stream.Disposition.attached_pic
    packet.stream = stream
    return packet


def read_chapters(source: str | os.PathLike[str] | bytes) -> list[ChapterMark]:
    """The chapter marks of an M4B (a path or its bytes), as FFmpeg's demuxer reads them."""
    av = load_av()
    file: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(file, "r") as container:
            found = container.chapters()
    except av.FFmpegError as exc:
        raise AudioError(f"cannot read m4b chapters: {exc}") from exc
    marks = []
    for ch in found:
        base = Fraction(ch["time_base"].numerator, ch["time_base"].denominator)  # a Fraction, or AVRational from av 19
        title = str(ch["metadata"].get("title", ""))
        marks.append(ChapterMark(title=title, start=float(ch["start"] * base), end=float(ch["end"] * base)))
    return marks
