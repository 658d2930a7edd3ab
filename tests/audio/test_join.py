import math
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from narrator.audio import (
    ChunkIn,
    JoinOptions,
    JoinReport,
    decode,
    join,
    join_files,
    plain_copy,
    srt,
    true_peak_envelope,
)
from narrator.chunker import Boundary
from narrator.errors import AudioError

from .signals import RATE, onsets, padded, speechlike, tone, write

Piece = tuple[np.ndarray, str, float | None]


def _join(tmp_path: Path, pieces: list[Piece], rate: int = RATE, **options: object) -> tuple[JoinReport, np.ndarray]:
    chunks = []
    for i, (x, boundary, pause) in enumerate(pieces):
        subtype = "FLOAT" if np.max(np.abs(x)) > 1 else None  # FLAC would clip a spike above full scale
        path = write(tmp_path / f"{i:05d}.{'wav' if subtype else 'flac'}", x, rate, subtype)
        chunks.append(ChunkIn(path, boundary, pause))
    out = tmp_path / f"out.{options.get('format', 'wav')}"
    report = join(chunks, out, JoinOptions(**options))  # type: ignore[arg-type]
    y, out_rate = sf.read(out, dtype="float32")
    assert out_rate == report.sample_rate
    return report, y


def _tone_chunk(seconds: float = 1.0, level: float = -20.0) -> np.ndarray:
    return padded(tone(seconds, level), 0.2, 0.3)


PAUSES = [
    ("sentence", Boundary.SENTENCE, None, 350),
    ("paragraph", Boundary.PARAGRAPH, None, 900),
    ("speaker", "speaker", None, 600),
    ("explicit break", "break", 500.0, 500),
    ("break without time", "break", None, 350),
    ("unknown kind", "chapter", None, 350),
    ("explicit overrides kind", Boundary.PARAGRAPH, 120.0, 120),
]


@pytest.mark.parametrize(("name", "boundary", "pause_ms", "gap_ms"), PAUSES, ids=[p[0] for p in PAUSES])
def test_pause_between_sounds_is_exact(tmp_path: Path, name: str, boundary: str, pause_ms: float, gap_ms: int) -> None:
    report, y = _join(tmp_path, [(_tone_chunk(), boundary, pause_ms), (_tone_chunk(), "end", None)])
    runs = onsets(y, threshold=0.01 * float(np.max(np.abs(y))))
    assert len(runs) == 2
    gap = runs[1][0] - runs[0][1]
    assert gap == gap_ms * RATE // 1000
    assert [(c.start_sample, c.end_sample) for c in report.chunks] == runs
    assert report.samples == len(y)


def test_pauses_add_up_over_many_chunks(tmp_path: Path) -> None:
    kinds = ["sentence", "paragraph", "sentence", "speaker", "end"]
    report, y = _join(tmp_path, [(_tone_chunk(0.5), k, None) for k in kinds])
    keep = RATE // 100  # 10 ms kept before the first sound and after the last
    sound = 0.5 * RATE - 1  # a sine from phase zero: its first sample is silent
    pauses = (350 + 900 + 350 + 600) * RATE // 1000
    assert len(y) == report.samples == keep + 5 * sound + pauses + keep
    assert report.duration == pytest.approx(len(y) / RATE)


def test_zero_pause_crossfades_the_kept_edges(tmp_path: Path) -> None:
    report, y = _join(tmp_path, [(_tone_chunk(), "break", 0.0), (_tone_chunk(), "end", None)])
    first, second = report.chunks
    assert second.start_sample == first.end_sample
    assert report.samples == len(y) == 240 + 2 * (RATE - 1) + 240


def test_chunks_at_another_rate_are_resampled(tmp_path: Path) -> None:
    x = padded(tone(1.0, -20.0, rate=16000), 0.2, 0.3, rate=16000)
    report, y = _join(tmp_path, [(x, "sentence", None), (x, "end", None)], rate=16000, sample_rate=RATE)
    assert report.sample_rate == RATE
    runs = onsets(y, threshold=0.01 * float(np.max(np.abs(y))))
    assert runs[1][0] - runs[0][1] == pytest.approx(350 * RATE // 1000, abs=2)
    assert report.chunks[1].start_sample - report.chunks[0].end_sample == 350 * RATE // 1000
    assert report.duration == pytest.approx(2 * 1.0 + 0.35 + 0.02, abs=0.002)


def test_untrimmed_chunks_keep_their_silence(tmp_path: Path) -> None:
    _, y = _join(tmp_path, [(_tone_chunk(), "sentence", None), (_tone_chunk(), "end", None)], trim=False)
    assert len(y) == 2 * len(_tone_chunk()) + 350 * RATE // 1000


LEVELS = [
    ("quiet tone", tone(2.0, -32.0, 300.0)),
    ("soft speech", speechlike(3.0, -26.0, seed=1)),
    ("loud speech", speechlike(2.5, -2.0, seed=2)),
    ("mid tone", tone(1.5, -12.0, 1000.0)),
    ("speech with a gap", np.concatenate([speechlike(1.0, -18.0, seed=3), padded(speechlike(1.0, -18.0), 0.5, 0)])),
]


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_every_chunk_reaches_the_loudness_target(tmp_path: Path, target: float) -> None:
    pieces: list[Piece] = [(padded(x, 0.1, 0.1), "sentence", None) for _, x in LEVELS]
    report, y = _join(tmp_path, pieces, target_lufs=target)
    meter = pyloudnorm.Meter(RATE)
    for chunk in report.chunks:
        measured = meter.integrated_loudness(y[chunk.start_sample : chunk.end_sample].astype(np.float64))
        assert measured == pytest.approx(target, abs=0.5)


def test_gain_is_capped(tmp_path: Path) -> None:
    report, _ = _join(tmp_path, [(padded(tone(1.0, -60.0), 0.1, 0.1), "end", None)], max_gain_db=12.0)
    assert report.chunks[0].gain_db == 12.0


def test_no_loudness_target_leaves_levels_alone(tmp_path: Path) -> None:
    pieces: list[Piece] = [(padded(x, 0.1, 0.1), "sentence", None) for _, x in LEVELS]
    report, y = _join(tmp_path, pieces, target_lufs=None, ceiling_dbtp=None)
    for chunk, (_, x) in zip(report.chunks, LEVELS, strict=True):
        region = y[chunk.start_sample : chunk.end_sample]
        assert float(np.max(np.abs(region))) == pytest.approx(float(np.max(np.abs(x))), abs=1e-3)
        assert chunk.gain_db == 0.0


def _spike_chunk() -> np.ndarray:
    x = speechlike(2.0, -1.0, seed=5)
    x[RATE // 2 : RATE // 2 + 3] = [1.7, 2.0, -1.9]  # about +6 dBFS
    return padded(x, 0.1, 0.1)


@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
def test_no_sample_above_the_ceiling(tmp_path: Path, ceiling: float) -> None:
    pieces: list[Piece] = [
        (_spike_chunk(), "sentence", None),
        (padded(tone(1.0, 0.0, 3000.0), 0.1, 0.1), "break", 0.0),
        (padded(speechlike(2.0, -30.0), 0.1, 0.1), "end", None),
    ]
    report, y = _join(tmp_path, pieces, ceiling_dbtp=ceiling)
    limit = 10 ** (ceiling / 20)
    assert float(np.max(np.abs(y))) <= limit
    assert 20 * math.log10(float(true_peak_envelope(y, RATE).max())) <= ceiling + 0.1
    assert report.chunks[0].limited_db > 3.0


def _max_jump(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y))))


@pytest.mark.parametrize("pause_ms", [0.0, 2.0, 350.0])
def test_no_click_at_joins(tmp_path: Path, pause_ms: float) -> None:
    # Tones that start and end mid-cycle at full level: butted together raw, they would click.
    pieces: list[Piece] = [
        (tone(0.5013, -6.0, 440.0), "break", pause_ms),
        (-tone(0.4021, -6.0, 523.0), "break", pause_ms),
        (padded(tone(0.3007, -6.0, 659.0) * np.hanning(7217).astype(np.float32), 0.05, 0.05), "break", pause_ms),
        (tone(0.5, -6.0, 440.0)[::-1].copy(), "end", None),
    ]
    report, y = _join(tmp_path, pieces, target_lufs=None)
    ends = [c.end_sample for c in report.chunks[:-1]]
    starts = [c.start_sample for c in report.chunks[1:]]
    steepest_tone = 2 * math.sin(math.pi * 659 / RATE) * 10 ** (-6 / 20)
    assert _max_jump(y) <= steepest_tone * 1.05
    for end, start in zip(ends, starts, strict=True):
        raw = abs(float(y[end - 1]) - float(y[start])) if start == end else 0.0
        assert raw <= steepest_tone * 1.05


_STAMP = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_caption_times_match_the_joined_audio(tmp_path: Path) -> None:
    texts = ["First sentence.", "Second one, longer.", "A new paragraph.", "Speaker two says hi.", "The end."]
    kinds = ["sentence", "paragraph", "speaker", "sentence", "end"]
    pieces: list[Piece] = [
        (padded(speechlike(0.6 + 0.3 * i, -10.0 - 4 * i, seed=i), 0.05 * i, 0.4 - 0.05 * i), k, None)
        for i, k in enumerate(kinds)
    ]
    report, y = _join(tmp_path, pieces)
    text = srt([(c.start, c.end, t) for c, t in zip(report.chunks, texts, strict=True)])
    cues = [(_seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])) for m in _STAMP.finditer(text)]
    heard = [(s / RATE, e / RATE) for s, e in onsets(y, threshold=10 ** (-40 / 20) * 0.05)]
    assert len(cues) == len(heard) == 5
    for (cue_start, cue_end), (start, end) in zip(cues, heard, strict=True):
        assert abs(cue_start - start) <= 0.010
        assert abs(cue_end - end) <= 0.010


FORMATS = [
    ("wav", None, RATE, 0.0),
    ("flac", 16000, 16000, 0.0),
    ("mp3", None, RATE, 0.1),
    ("mp3", 44100, 44100, 0.1),
    ("opus", None, RATE, 0.01),
    ("opus", 22050, RATE, 0.01),  # Opus has no 22.05 kHz: the next rate up
    ("opus", 44100, 48000, 0.01),
]


@pytest.mark.parametrize(("fmt", "asked", "rate", "tolerance"), FORMATS)
def test_every_format_round_trips(tmp_path: Path, fmt: str, asked: int | None, rate: int, tolerance: float) -> None:
    kinds = ["sentence", "sentence", "end"]
    pieces: list[Piece] = [(padded(speechlike(1.0, -6.0, seed=i), 0.1, 0.1), k, None) for i, k in enumerate(kinds)]
    report, _ = _join(tmp_path, pieces, format=fmt, sample_rate=asked)
    assert report.sample_rate == rate
    decoded = decode((tmp_path / f"out.{fmt}").read_bytes(), field="output")
    assert decoded.sample_rate == rate
    assert decoded.duration == pytest.approx(report.duration, abs=tolerance + 1e-9)
    assert report.duration == pytest.approx(3 * (1.0 - 1 / RATE) + 2 * 0.35 + 0.02, abs=0.002)


def test_memory_stays_flat_over_a_long_run(tmp_path: Path) -> None:
    sources = [write(tmp_path / f"{i}.flac", padded(speechlike(3.0, -12.0, seed=i), 0.2, 0.2)) for i in range(4)]

    def peak_for(count: int) -> int:
        chunks = [ChunkIn(sources[i % 4], "paragraph" if i % 5 == 4 else "sentence") for i in range(count)]
        tracemalloc.start()
        try:
            report = join(chunks, tmp_path / f"out{count}.flac", JoinOptions(format="flac"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(report.chunks) == count
        return peak

    short, long = peak_for(20), peak_for(200)  # 200 chunks: 11 minutes, 63 MB as float32
    assert long < 8_000_000
    assert long < short * 1.5


def test_a_silent_chunk_adds_no_time(tmp_path: Path) -> None:
    silent = np.zeros(RATE, np.float32)
    pieces: list[Piece] = [(_tone_chunk(), "sentence", None), (silent, "paragraph", None), (_tone_chunk(), "end", None)]
    report, y = _join(tmp_path, pieces)
    runs = onsets(y, threshold=0.001)
    assert runs[1][0] - runs[0][1] == 900 * RATE // 1000  # the longer of the two pauses
    assert report.chunks[1].start_sample == report.chunks[1].end_sample


def test_join_files_and_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "good.flac", _tone_chunk())
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all" * 100)
    report = join_files([good, good], tmp_path / "o.opus", boundaries=["paragraph", "end"], fmt="opus")
    assert report.format == "opus" and len(report.spans) == 2
    assert report.spans[1][0] - report.spans[0][1] == pytest.approx(0.9)
    with pytest.raises(AudioError, match="chunk 1: not readable audio"):
        join_files([good, bad], tmp_path / "o.wav")
    with pytest.raises(AudioError, match="do not match"):
        join_files([good, good], tmp_path / "o.wav", boundaries=["end"])
    with pytest.raises(AudioError, match="nothing to join"):
        join_files([], tmp_path / "o.wav")
    with pytest.raises(AudioError, match="not a length"):
        join_files([good], tmp_path / "o.wav", pauses_ms=[-5.0])
    with pytest.raises(AudioError, match="format: 'aac'"):
        join_files([good], tmp_path / "o.aac", fmt="aac")


def test_plain_copy_is_the_samples_as_they_are(tmp_path: Path) -> None:
    pieces = [padded(speechlike(0.5, -6.0, seed=i), 0.1, 0.2) for i in range(3)]
    paths = [write(tmp_path / f"{i}.flac", x, subtype="PCM_16") for i, x in enumerate(pieces)]
    report = plain_copy(paths, tmp_path / "copy.wav")
    y, _ = sf.read(tmp_path / "copy.wav", dtype="float32")
    expected = np.concatenate([sf.read(p, dtype="float32")[0] for p in paths])
    assert np.array_equal(y, expected)
    assert report.samples == len(expected)
    other = write(tmp_path / "other.flac", tone(0.5, rate=16000), 16000)
    with pytest.raises(AudioError, match="chunk 1: 16000 Hz"):
        plain_copy([paths[0], other], tmp_path / "copy2.wav")
