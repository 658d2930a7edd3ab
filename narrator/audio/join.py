"""Join chunk audio, in order, into one file, streaming.

Per chunk: read, resample to the output rate, trim leading and trailing silence
(keeping a few ms), gain to a loudness target, true-peak limit, fade the edges.
Between chunks: a pause chosen by the boundary that follows the chunk. Memory
holds one chunk and a few ms of the previous one, whatever the length of the book.

Pauses are measured between the sounds: the silence between the last audible
sample of one chunk and the first audible sample of the next is exactly the
pause, to the sample. The kept edges count towards it; when the pause is shorter
than the two edges together, they overlap, and their complementary fades make
that a crossfade.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

import numpy as np

from ..errors import AudioError
from .book_meta import BookTags, ChapterMark
from .decode import Source, read_audio
from .dsp import db_to_gain, fade_edges, resample, silence_threshold, sound_bounds
from .encode import DEFAULT_MP3_KBPS, Sink, Target, check_format, open_sink, output_rate
from .limiter import limit
from .loudness import integrated_loudness
from .m4b import M4bSink
from .types import Audio

log = logging.getLogger(__name__)

DEFAULT_PAUSES_MS: Mapping[str, float] = {
    "word": 60.0,
    "clause": 200.0,
    "sentence": 350.0,
    "paragraph": 900.0,
    "heading": 1100.0,
    "speaker": 600.0,
    "end": 0.0,
}


@dataclass(frozen=True)
class JoinOptions:
    sample_rate: int | None = None
    """Output rate; ``None``: the first chunk's. Opus and MP3 round up to a rate they allow."""
    format: str = "wav"
    pauses_ms: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PAUSES_MS))
    """Pause after a chunk, by the kind of boundary that follows it."""
    default_pause_ms: float = 350.0
    """For a boundary kind ``pauses_ms`` does not name (e.g. ``break`` without a time)."""
    trim: bool = True
    trim_relative_db: float = -40.0
    """A sample this far under the chunk's peak is silence..."""
    trim_floor_db: float = -60.0
    """...and so is any sample under this level (dBFS)."""
    keep_ms: float = 10.0
    """Silence kept on each side of a trimmed chunk."""
    fade_ms: float = 5.0
    target_lufs: float | None = -16.0
    """Integrated loudness every chunk is gained to; ``None`` leaves levels alone."""
    max_gain_db: float = 30.0
    """No chunk is raised or lowered by more than this (a near-silent chunk stays quiet)."""
    ceiling_dbtp: float | None = -1.0
    """True-peak ceiling of the limiter; ``None``: no limiter (samples are still clipped to full scale)."""
    mp3_kbps: int = DEFAULT_MP3_KBPS
    chapters: tuple[tuple[int, str], ...] = ()
    """A book's chapters: (index of its first chunk, title), in order. Their marks (where each
    starts in the output) are in the report, and written into an m4b file."""
    tags: BookTags | None = None
    """Title, author and cover of an m4b file."""


@dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk's sound (trimmed of silence) lies in the output."""

    index: int
    start_sample: int
    end_sample: int
    sample_rate: int
    gain_db: float = 0.0
    limited_db: float = 0.0
    source_start_sample: int = 0
    """Where the sound starts in the chunk's own audio (at the output's rate): what trimming removed."""

    @property
    def offset(self) -> float:
        """Seconds into the chunk's own audio where its sound (and ``start``) begins."""
        return self.source_start_sample / self.sample_rate

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate


@dataclass(frozen=True)
class JoinReport:
    format: str
    sample_rate: int
    samples: int
    chunks: list[ChunkSpan]
    chapters: list[ChapterMark] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    @property
    def spans(self) -> list[tuple[float, float]]:
        """(start, end) seconds of each chunk's sound, in order: the caption times."""
        return [(c.start, c.end) for c in self.chunks]


@dataclass(frozen=True)
class ChunkIn:
    source: Source
    boundary: str = "sentence"
    pause_ms: float | None = None


def join(chunks: Iterable[ChunkIn], target: Target, options: JoinOptions | None = None) -> JoinReport:
    """Write ``chunks`` to ``target`` as one file; see :class:`Joiner`."""
    with Joiner(target, options) as joiner:
        for chunk in chunks:
            joiner.add(chunk.source, chunk.boundary, chunk.pause_ms)
    return joiner.report


def join_files(
    sources: Sequence[Source],
    target: Target,
    *,
    boundaries: Sequence[str] | None = None,
    pauses_ms: Sequence[float | None] | None = None,
    fmt: str | None = None,
    sample_rate: int | None = None,
    options: JoinOptions | None = None,
) -> JoinReport:
    """:func:`join` from parallel lists; ``fmt`` and ``sample_rate`` override ``options``."""
    options = options or JoinOptions()
    options = replace(options, format=fmt or options.format, sample_rate=sample_rate or options.sample_rate)
    kinds = list(boundaries) if boundaries is not None else ["sentence"] * len(sources)
    pauses = list(pauses_ms) if pauses_ms is not None else [None] * len(sources)
    if not len(kinds) == len(pauses) == len(sources):
        raise AudioError(f"{len(sources)} chunks, {len(kinds)} boundaries and {len(pauses)} pauses do not match")
    chunks = (ChunkIn(s, b, p) for s, b, p in zip(sources, kinds, pauses, strict=True))
    return join(chunks, target, options)


class Joiner:
    """Streaming writer: ``add`` chunks in order, then ``close`` (or use as a context manager)."""

    def __init__(self, target: Target, options: JoinOptions | None = None) -> None:
        self.options = options or JoinOptions()
        check_format(self.options.format)
        if self.options.sample_rate is not None and not 1000 <= self.options.sample_rate <= 384000:
            raise AudioError(f"sample_rate: {self.options.sample_rate} Hz is not a usable rate")
        self._target = target
        self._sink: Sink | None = None
        self._rate = 0
        self._pending = np.zeros(0, dtype=np.float32)  # the unwritten end of the output
        self._length = 0  # samples written + pending
        self._pause = 0  # samples of silence owed after the last sound
        self._tail_pad = 0  # kept silence after the last sound, already in the output
        self._spans: list[ChunkSpan] = []
        self._report: JoinReport | None = None
        ceiling = self.options.ceiling_dbtp
        # A whole number of 16-bit steps, so that rounding to 16 bits cannot cross the ceiling.
        self._clip = math.floor(db_to_gain(ceiling) * 32767) / 32768 if ceiling is not None else 1.0

    def __enter__(self) -> Joiner:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        elif self._sink is not None:
            try:
                self._sink.close()
            except AudioError as failed:  # the join's own error is the one to raise
                log.warning("output not finished after a failed join", extra={"error": str(failed)})

    @property
    def report(self) -> JoinReport:
        if self._report is None:
            raise AudioError("the join is not finished")
        return self._report

    def add(self, source: Source, boundary: str = "sentence", pause_ms: float | None = None) -> ChunkSpan:
        """Append one chunk; ``boundary`` (or ``pause_ms``) sets the pause after it."""
        index = len(self._spans)
        audio = read_audio(source, field=f"chunk {index}")
        if self._sink is None:
            self._open(audio.sample_rate)
        pause = self._pause_samples(boundary, pause_ms)
        audio = resample(audio, self._rate)
        body, head_pad, tail_pad, sound, first = self._trimmed(audio.samples)
        gain_db, limited_db = self._level(body) if sound else (0.0, 0.0)
        fade_edges(body, round(self.options.fade_ms * self._rate / 1000))
        start = self._place(body, head_pad, sound) + head_pad
        span = ChunkSpan(index, start, start + sound, self._rate, gain_db, limited_db, first)
        self._spans.append(span)
        if sound:
            self._pause, self._tail_pad = pause, tail_pad
        else:
            log.warning("chunk is silent", extra={"chunk": index})
            self._pause = max(self._pause, pause)
        return span

    def close(self) -> JoinReport:
        if self._report is not None:
            return self._report
        if self._sink is None:
            raise AudioError("nothing to join: no chunks were added")
        self._write(self._pending)
        trailing = max(0, self._pause - self._tail_pad)
        self._write(np.zeros(trailing, dtype=np.float32))
        self._length += trailing
        marks = chapter_marks(self._spans, self.options.chapters, self._length, self._rate)
        if marks and isinstance(self._sink, M4bSink):
            self._sink.set_chapters(marks)  # known only now: where each chapter's first chunk landed
        self._sink.close()
        self._report = JoinReport(self.options.format, self._rate, self._length, self._spans, marks)
        return self._report

    def _open(self, first_rate: int) -> None:
        self._rate = output_rate(self.options.format, self.options.sample_rate or first_rate)
        self._sink = open_sink(self._target, self.options.format, self._rate, mp3_kbps=self.options.mp3_kbps,
                               tags=self.options.tags)

    def _trimmed(self, samples: np.ndarray) -> tuple[np.ndarray, int, int, int, int]:
        """(kept samples, silence kept before the sound, after it, sound length, where the sound starts)."""
        o = self.options
        if not o.trim:
            # The whole chunk counts as its sound: its silence is its own, not part of the pause.
            return samples, 0, 0, len(samples), 0
        first, last = sound_bounds(samples, silence_threshold(samples, o.trim_relative_db, o.trim_floor_db))
        if last <= first:
            return np.zeros(0, dtype=np.float32), 0, 0, 0, 0
        keep = round(o.keep_ms * self._rate / 1000)
        lo, hi = max(0, first - keep), min(len(samples), last + keep)
        return samples[lo:hi], first - lo, hi - last, last - first, first  # a view: read_audio's array is ours

    def _level(self, body: np.ndarray) -> tuple[float, float]:
        """Gain ``body`` to the loudness target and limit it, in place; returns (gain dB, reduction dB)."""
        o = self.options
        gain_db = 0.0
        if o.target_lufs is not None:
            measured = integrated_loudness(body, self._rate)
            if math.isfinite(measured):
                gain_db = max(-o.max_gain_db, min(o.max_gain_db, o.target_lufs - measured))
                body *= np.float32(db_to_gain(gain_db))
        limited_db = 0.0
        if o.ceiling_dbtp is not None:
            limited, limited_db = limit(body, self._rate, o.ceiling_dbtp)
            if limited is not body:
                body[:] = limited
        return gain_db, limited_db

    def _place(self, body: np.ndarray, head_pad: int, sound: int) -> int:
        """Put ``body`` after the output so far; returns where it starts."""
        if not sound:
            return self._length + self._pause - self._tail_pad  # where the next sound would go
        gap = self._pause - self._tail_pad - head_pad if self._length else 0
        if gap >= 0:
            self._write(self._pending)
            self._write(np.zeros(gap, dtype=np.float32))
            start = self._length + gap
        else:  # the kept edges overlap: their fades make it a crossfade
            overlap = min(-gap, len(self._pending), len(body))
            self._write(self._pending[: len(self._pending) - overlap])
            start = self._length - overlap
            body[:overlap] += self._pending[len(self._pending) - overlap :]
        # Hold back what the next chunk's edge may overlap.
        held = min(len(body), 2 * round(self.options.keep_ms * self._rate / 1000))
        self._write(body[: len(body) - held])
        self._pending = body[len(body) - held :]
        self._length = start + len(body)
        return start

    def _write(self, samples: np.ndarray) -> None:
        if len(samples) and self._sink is not None:
            self._sink.write(np.clip(samples, -self._clip, self._clip, out=samples))

    def _pause_samples(self, boundary: str, pause_ms: float | None) -> int:
        o = self.options
        if pause_ms is None:
            pause_ms = o.pauses_ms.get(str(boundary))
            if pause_ms is None:
                log.info("no pause set for boundary kind; using the default", extra={"boundary": str(boundary)})
                pause_ms = o.default_pause_ms
        if pause_ms < 0 or not math.isfinite(pause_ms):
            raise AudioError(f"pause: {pause_ms!r} ms is not a length")
        return round(pause_ms * self._rate / 1000)


def chapter_marks(
    spans: Sequence[ChunkSpan], chapters: Sequence[tuple[int, str]], length: int, rate: int
) -> list[ChapterMark]:
    """Each chapter from the middle of the pause before its first chunk (the first from 0) to the next."""
    if not chapters:
        return []
    starts = []
    for k, (first, _) in enumerate(chapters):
        if not 0 <= first < len(spans):
            raise AudioError(f"chapter {k + 1} starts at chunk {first}, and there are {len(spans)} chunks")
        before = spans[first - 1].end_sample if first > 0 else 0
        starts.append(0 if k == 0 else (before + spans[first].start_sample) // 2)
    ends = [*starts[1:], length]
    return [ChapterMark(title=title, start=start / rate, end=end / rate)
            for (_, title), start, end in zip(chapters, starts, ends, strict=True)]


def plain_copy(sources: Iterable[Source], target: Target, fmt: str = "wav") -> JoinReport:
    """Concatenate the samples of ``sources`` as they are: no trim, pause, gain or resampling.

    The speed baseline for :func:`join`; every source must share the first one's rate.
    """
    sink: Sink | None = None
    length = 0
    spans: list[ChunkSpan] = []
    for index, source in enumerate(sources):
        audio: Audio = read_audio(source, field=f"chunk {index}")
        if sink is None:
            sink = open_sink(target, check_format(fmt), audio.sample_rate)
        if audio.sample_rate != sink.sample_rate:
            raise AudioError(f"chunk {index}: {audio.sample_rate} Hz, the others are {sink.sample_rate} Hz")
        sink.write(audio.samples)
        spans.append(ChunkSpan(index, length, length + len(audio.samples), sink.sample_rate))
        length += len(audio.samples)
    if sink is None:
        raise AudioError("nothing to join: no chunks were given")
    sink.close()
    return JoinReport(fmt, sink.sample_rate, length, spans)
