"""SRT and WebVTT from (start, end, text) cues. Pure: strings in, a string out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple


class Cue(NamedTuple):
    start: float
    """Seconds from the start of the audio."""
    end: float
    text: str


_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t]+")


def srt(cues: Iterable[tuple[float, float, str]]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm`` times. Cues without text are left out."""
    blocks = []
    for n, (start, end, text) in enumerate(_clean(cues), start=1):
        blocks.append(f"{n}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{text}\n")
    return "\n".join(blocks)


def webvtt(cues: Iterable[tuple[float, float, str]]) -> str:
    """WebVTT text: a ``WEBVTT`` header and ``HH:MM:SS.mmm`` cues, text escaped."""
    blocks = ["WEBVTT\n"]
    for start, end, text in _clean(cues):
        safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{safe}\n")
    return "\n".join(blocks)


def _clean(cues: Iterable[tuple[float, float, str]]) -> list[Cue]:
    """Text trimmed, with no blank line inside a cue (that would end it); times in order and non-negative."""
    out = []
    for start, end, text in cues:
        body = _BLANK_LINES.sub("\n", text.strip())
        body = "\n".join(_SPACES.sub(" ", line).strip() for line in body.splitlines())
        if not body:
            continue
        begin = max(0.0, float(start))
        out.append(Cue(begin, max(begin, float(end)), body))
    return out


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"
