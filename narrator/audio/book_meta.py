"""An audiobook's metadata, apart from any container: chapter marks and their checks, tags,
titles and file names made safe, language codes. Pure: no PyAV."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import AudioError

log = logging.getLogger(__name__)

CHPL_TITLE_BYTES = 255  # the Nero list stores a title's length in one byte: FFmpeg cuts longer ones mid-character
_NAME_BYTES = 120  # of a chapter file name's title part: far under any file system's 255


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start: float
    """Seconds into the file."""
    end: float


@dataclass(frozen=True)
class BookTags:
    title: str = ""
    author: str = ""
    cover: bytes | None = None
    cover_type: str | None = None
    """``image/jpeg`` or ``image/png``; ``None``: told by the bytes."""
    language: str | None = None
    """ISO 639 (``de``, ``deu``) or a BCP 47 tag (``pt-BR``): the audio track's language."""
    comment: str = ""


def check_chapters(marks: Sequence[ChapterMark], rate: int, samples: int | None = None) -> list[ChapterMark]:
    """``marks`` if they start at 0, ascend, are contiguous and (given the audio's length) end in it."""
    out = list(marks)
    for k, mark in enumerate(out, 1):
        name = f"chapter {k} ({mark.title!r})"
        if not (np.isfinite(mark.start) and np.isfinite(mark.end)) or mark.start < 0:
            raise AudioError(f"{name}: {mark.start}-{mark.end} s is not a time in the file")
        if k == 1 and at(mark.start, rate):
            # FFmpeg's chapter track would stretch the first chapter back to 0 anyway.
            raise AudioError(f"{name} starts at {mark.start} s: the first chapter must start at 0")
        if at(mark.end, rate) <= at(mark.start, rate):
            raise AudioError(f"{name} ends at {mark.end} s, not after its start at {mark.start} s")
        if k > 1 and at(mark.start, rate) != at(out[k - 2].end, rate):
            raise AudioError(f"{name} starts at {mark.start} s, the previous one ends at {out[k - 2].end} s")
    if samples is not None and out and at(out[-1].end, rate) > samples:
        raise AudioError(f"chapter {len(out)} ends at {out[-1].end} s, after the audio ({samples / rate} s)")
    return out


def at(seconds: float, rate: int) -> int:
    return round(seconds * rate)


def chapter_title(title: str, number: int) -> str:
    """``title`` as a chapter mark: one line, no control characters, at most 255 UTF-8 bytes."""
    text = " ".join(_printable(title).split()) or f"Chapter {number}"
    return _cut(text, CHPL_TITLE_BYTES)


def _printable(text: str) -> str:
    return "".join(c if unicodedata.category(c)[0] != "C" else " " for c in unicodedata.normalize("NFC", text))


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes on a character boundary."""
    return text.encode()[:limit].decode(errors="ignore")


def image_kind(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


# ISO 639-1 -> 639-2/T for the languages books are commonly in; three-letter codes pass as they are.
_ISO639 = dict(
    pair.split(":")
    for pair in (
        "af:afr ar:ara bg:bul bn:ben ca:cat cs:ces cy:cym da:dan de:deu el:ell en:eng eo:epo es:spa et:est "
        "eu:eus fa:fas fi:fin fr:fra ga:gle gl:glg he:heb hi:hin hr:hrv hu:hun hy:hye id:ind is:isl it:ita "
        "ja:jpn ka:kat kk:kaz ko:kor la:lat lt:lit lv:lav mk:mkd ms:msa mt:mlt nb:nob nl:nld nn:nno no:nor "
        "pl:pol pt:por ro:ron ru:rus sk:slk sl:slv sq:sqi sr:srp sv:swe sw:swa ta:tam th:tha tr:tur uk:ukr "
        "ur:urd vi:vie zh:zho"
    ).split()
)


def iso639_2(language: str | None) -> str | None:
    """The three-letter code MP4 stores for ``language`` (``de-AT`` -> ``deu``), or None if unknown."""
    primary = re.split(r"[-_]", (language or "").strip().lower())[0]
    if re.fullmatch(r"[a-z]{3}", primary):
        return primary
    code = _ISO639.get(primary)
    if code is None and primary:
        log.warning("language left out: no ISO 639-2 code known", extra={"language": language})
    return code


_UNSAFE_IN_NAME = re.compile(r'[/\\:*?"<>|]')


def chapter_name(index: int, title: str, ext: str, *, width: int = 2) -> str:
    """A safe file name for a chapter: ``chapter_name(3, "The Storm", "m4b")`` -> ``03 - The Storm.m4b``.

    No path separators, control or reserved characters, no leading or trailing dots,
    the title part at most 120 UTF-8 bytes; ``width`` pads the number so names sort.
    """
    text = " ".join(_UNSAFE_IN_NAME.sub(" ", _printable(title)).split()).strip(". ")
    text = _cut(text, _NAME_BYTES).rstrip(". ") or f"Chapter {index}"
    suffix = re.sub(r"[^A-Za-z0-9]", "", ext)
    return f"{index:0{width}d} - {text}" + (f".{suffix}" if suffix else "")
