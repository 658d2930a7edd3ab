"""M4B output: write real books from tone blocks and read them back with independent readers.

mutagen (its own MP4 parser) reads the tags, the cover, the duration and the Nero chapter
list; PyAV (FFmpeg's demuxer, which prefers the QuickTime chapter track) reads the chapter
marks, the codec and the track's language.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from mutagen.mp4 import MP4, Atoms, MP4Cover

from narrator.audio.book_meta import BookTags, ChapterMark, chapter_name
from narrator.audio.encode import FORMATS, content_type, encode, open_sink, output_rate
from narrator.audio.m4b import AAC_FRAME, M4bSink, read_chapters
from narrator.audio.types import Audio
from narrator.errors import AudioError

from .signals import tone

TITLES = ["Eins", "Kapitel 2: Über den Fluß", "第三章 风暴", "Глава 4", "Ἕκτωρ & <Andromache>"]


def png() -> bytes:
    """A 2x2 RGB PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg() -> bytes:
    """A 16x16 grey JPEG (FFmpeg's MJPEG encoder: one JPEG image per packet)."""
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = 16, 16, "yuvj420p", Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 128, np.uint8), format="rgb24").reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


def boxes(path: Path) -> set[str]:
    """Every box path in the file (``moov.trak.tref.chap``), as mutagen parses them."""
    found: set[str] = set()

    def walk(atoms: list[Any], prefix: str) -> None:
        for atom in atoms:
            name = f"{prefix}{atom.name.decode('latin-1')}"
            found.add(name)
            walk(atom.children or [], name + ".")
            if atom.name == b"tref":  # mutagen does not descend into it: its first box's type
                found.add(f"{name}.{atom.read(f)[1][4:8].decode('latin-1')}")

    with path.open("rb") as f:
        walk(Atoms(f).atoms, "")
    return found


def blocks(rate: int, seconds: float) -> list[np.ndarray]:
    """``seconds`` of tone in blocks of awkward sizes: empty, one sample, less and more than a frame."""
    total = round(seconds * rate)
    sizes = [0, 1, 1000, AAC_FRAME * 3 + 7, rate // 2, 12345]
    out, written, k = [], 0, 0
    while written < total:
        n = min(sizes[k % len(sizes)] or 0, total - written) if k < len(sizes) else min(rate, total - written)
        out.append(tone(n / rate, -12.0, 220.0 + 40 * k, rate=rate)[:n])
        written += n
        k += 1
    return out


def marks_for(starts: list[float], end: float, titles: list[str] = TITLES) -> list[ChapterMark]:
    ends = [*starts[1:], end]
    return [ChapterMark(t, s, e) for t, s, e in zip(titles, starts, ends, strict=False)]


def write(target: Path | io.BytesIO, rate: int, seconds: float, marks: list[ChapterMark], tags: BookTags) -> int:
    sink = open_sink(target, "m4b", rate, tags=tags)
    assert isinstance(sink, M4bSink) and sink.sample_rate == rate
    written = 0
    parts = blocks(rate, seconds)
    for k, block in enumerate(parts):
        sink.write(block)
        written += len(block)
        if k == len(parts) // 2:
            sink.set_chapters([ChapterMark("placeholder", 0.0, 0.5)])  # replaced below: the last call counts
    sink.set_chapters(marks)  # as the joiner does: after the last sample, before close
    sink.close()
    return written


BOOKS = [
    # rate, seconds, chapter starts (s), cover, language -> mdhd code
    (24000, 4.0, [0.0, 0.7, 1.2345, 29_999 / 24000 * 2, 3.5], png(), "de", "deu"),
    (44100, 3.0, [0.0, 1.0, 2.0], jpeg(), "pt-BR", "por"),
    (22050, 2.5, [0.0, 0.1, 0.2, 2.4], None, "fra", "fra"),
    (48000, 2.0, [0.0], None, None, "und"),
]


@pytest.mark.parametrize(("rate", "seconds", "starts", "cover", "language", "code"), BOOKS)
@pytest.mark.parametrize("to_path", [True, False], ids=["path", "file"])
def test_book_reads_back(
    tmp_path: Path,
    rate: int,
    seconds: float,
    starts: list[float],
    cover: bytes | None,
    language: str | None,
    code: str,
    to_path: bool,
) -> None:
    marks = marks_for(starts, seconds)
    tags = BookTags(title="Die Brücke", author="Ödön Åberg", cover=cover, language=language, comment="narrator")
    out = tmp_path / "book.m4b"
    buffer = io.BytesIO()
    written = write(out if to_path else buffer, rate, seconds, marks, tags)
    if not to_path:
        out.write_bytes(buffer.getvalue())
    data = out.read_bytes()
    assert data[4:12] == b"ftypM4B "

    book = MP4(out)
    assert (book.info.codec, book.info.channels, book.info.sample_rate) == ("mp4a.40.2", 1, rate)
    # mutagen's length is the track's media time: the encoder's priming frame included (< 0.05 s here).
    assert book.info.length == pytest.approx(written / rate, abs=0.05)
    assert book.tags is not None
    assert book.tags["©nam"] == book.tags["©alb"] == ["Die Brücke"]
    assert book.tags["©ART"] == book.tags["aART"] == ["Ödön Åberg"]
    assert book.tags["©cmt"] == ["narrator"]
    if cover is None:
        assert "covr" not in book.tags
    else:
        (art,) = book.tags["covr"]
        assert bytes(art) == cover
        assert art.imageformat == (MP4Cover.FORMAT_PNG if cover.startswith(b"\x89PNG") else MP4Cover.FORMAT_JPEG)
    # Both chapter lists: Nero's (moov.udta.chpl, mutagen reads it) and the QuickTime chapter
    # track Apple Books reads (a text track the audio track points to: tref.chap; FFmpeg reads it).
    assert {"moov.udta.chpl", "moov.trak.tref.chap", "moov.udta.meta.ilst.©nam"} <= boxes(out)
    assert [c.title for c in book.chapters] == [m.title for m in marks]
    assert [c.start for c in book.chapters] == pytest.approx([m.start for m in marks], abs=AAC_FRAME / rate)
    back = read_chapters(out)
    assert [c.title for c in back] == [m.title for m in marks]
    assert [c.start for c in back] == pytest.approx([m.start for m in marks], abs=AAC_FRAME / rate)
    assert [c.end for c in back] == pytest.approx([m.end for m in marks], abs=AAC_FRAME / rate)
    assert read_chapters(data) == back

    with av.open(str(out)) as container:
        (audio,) = container.streams.audio
        assert audio.codec_context.name == "aac" and audio.codec_context.profile == "LC"
        assert audio.codec_context.layout.nb_channels == 1
        assert audio.metadata.get("language", "und") == code
        assert container.duration is not None
        # FFmpeg applies the edit list: the priming frame is not counted.
        assert container.duration / 1e6 == pytest.approx(written / rate, abs=AAC_FRAME / rate)


def test_long_and_odd_titles_are_cut_safely(tmp_path: Path) -> None:
    rate = 24000
    odd = ["Ü" * 200, "line\nbreak\tand\x00nul", "", "  spaced   out  "]
    marks = marks_for([0.0, 0.5, 1.0, 1.5], 2.0, odd)
    write(tmp_path / "b.m4b", rate, 2.0, marks, BookTags())
    titles = [c.title for c in MP4(tmp_path / "b.m4b").chapters]
    assert titles == ["Ü" * 127, "line break and nul", "Chapter 3", "spaced out"]  # 127 x 2 bytes <= 255
    assert [c.title for c in read_chapters(tmp_path / "b.m4b")] == titles


def test_no_chapters_and_no_tags(tmp_path: Path) -> None:
    sink = M4bSink(tmp_path / "plain.m4b", 16000)
    sink.write(tone(1.0, rate=16000))
    sink.close()
    assert read_chapters(tmp_path / "plain.m4b") == []
    book = MP4(tmp_path / "plain.m4b")
    assert book.info.sample_rate == 16000 and not book.chapters


def test_unusable_cover_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gif = b"GIF89a" + bytes(20)
    write(tmp_path / "b.m4b", 24000, 1.0, marks_for([0.0], 1.0), BookTags(title="T", cover=gif))
    assert "covr" not in (MP4(tmp_path / "b.m4b").tags or {})
    assert "cover left out" in caplog.text


E = 2.0  # the bad books' length
BAD = [
    ("first after 0", [ChapterMark("a", 0.5, 1.0), ChapterMark("b", 1.0, E)], "must start at 0"),
    ("gap", [ChapterMark("a", 0.0, 1.0), ChapterMark("b", 1.2, E)], "previous one ends at 1.0"),
    ("overlap", [ChapterMark("a", 0.0, 1.0), ChapterMark("b", 0.8, E)], "previous one ends at 1.0"),
    ("descending", [ChapterMark("a", 0.0, 1.5), ChapterMark("b", 1.5, 1.0)], "not after its start"),
    ("empty chapter", [ChapterMark("a", 0.0, 1.0), ChapterMark("b", 1.0, 1.0)], "not after its start"),
    ("negative", [ChapterMark("a", -1.0, 1.0)], "not a time in the file"),
    ("not a number", [ChapterMark("a", 0.0, float("nan"))], "not a time in the file"),
]


@pytest.mark.parametrize(("marks", "message"), [(m, msg) for _, m, msg in BAD], ids=[name for name, *_ in BAD])
def test_bad_chapters_refused(tmp_path: Path, marks: list[ChapterMark], message: str) -> None:
    sink = M4bSink(tmp_path / "bad.m4b", 24000)
    with pytest.raises(AudioError, match=message):
        sink.set_chapters(marks)


def test_chapters_past_the_end_refused_at_close(tmp_path: Path) -> None:
    sink = M4bSink(tmp_path / "bad.m4b", 24000)
    sink.write(tone(E))
    sink.set_chapters([ChapterMark("a", 0.0, 1.0), ChapterMark("b", 1.0, E + 0.5)])
    with pytest.raises(AudioError, match=r"chapter 2 ends at 2.5 s, after the audio \(2.0 s\)"):
        sink.close()
    assert not (tmp_path / "bad.m4b").exists()
    assert not list(tmp_path.iterdir())  # the temporary encode is gone too


def test_rate_must_be_an_aac_rate(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot be written at 20000 Hz"):
        open_sink(tmp_path / "x.m4b", "m4b", 20000)


@pytest.mark.parametrize(
    ("asked", "rate"), [(8000, 8000), (7000, 8000), (20000, 22050), (24000, 24000), (44100, 44100), (96000, 48000)]
)
def test_output_rate(asked: int, rate: int) -> None:
    assert output_rate("m4b", asked) == rate


def test_format_registered() -> None:
    assert "m4b" in FORMATS and content_type("m4b") == "audio/mp4"
    data = encode(Audio(tone(1.0, rate=20000), 20000), "m4b")  # one-shot: resampled to 22050
    assert MP4(io.BytesIO(data)).info.sample_rate == 22050


def test_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError, as without the extra
    with pytest.raises(AudioError, match=r"format: m4b needs the 'book' extra: pip install 'narrator\[book\]'"):
        open_sink(tmp_path / "x.m4b", "m4b", 24000)
    with pytest.raises(AudioError, match="needs the 'book' extra"):
        read_chapters(tmp_path / "x.m4b")


NAMES = [
    ((3, "The Storm", "m4b"), "03 - The Storm.m4b"),
    ((3, "The Storm", ".mp3"), "03 - The Storm.mp3"),
    ((12, "Kapitel 2: Über den Fluß", "m4b"), "12 - Kapitel 2 Über den Fluß.m4b"),
    ((1, "../../etc/passwd", "wav"), "01 - etc passwd.wav"),
    ((2, 'a\\b/c:d*e?f"g<h>i|j', "flac"), "02 - a b c d e f g h i j.flac"),
    ((4, "tab\there\nnewline\x00nul\x7f", "m4b"), "04 - tab here newline nul.m4b"),
    ((5, "  ...  ", "m4b"), "05 - Chapter 5.m4b"),
    ((6, "", "m4b"), "06 - Chapter 6.m4b"),
    ((123, "Epilogue.", "opus"), "123 - Epilogue.opus"),
    ((7, "第七章 " + "长" * 100, "m4b"), "07 - 第七章 " + "长" * 36 + ".m4b"),  # 118 of 120 bytes: whole characters
]


@pytest.mark.parametrize(("args", "name"), NAMES)
def test_chapter_name(args: tuple[int, str, str], name: str) -> None:
    assert chapter_name(*args) == name
    assert len(chapter_name(*args).encode()) <= 140


def test_chapter_name_width() -> None:
    assert chapter_name(7, "Seven", "m4b", width=3) == "007 - Seven.m4b"
