"""What the front ends (plain text, scripts, SSML) hand the packer: text, blocks, substitutions, offsets.

A :class:`Doc` holds the text the blocks index. For plain text and scripts that is the
input itself; for SSML it is the document's text content, and a :class:`SourceMap` takes
its offsets back to the input.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from .chunk import Boundary
from .normalize import normalize_many
from .sentences import CJK, CJK_CHARS, CLOSERS

_STOPS = ".!?…。！？,;:—–-"


@dataclass
class Block:
    """A run of text between structural boundaries with one speaker and one speed."""

    start: int
    end: int
    after: Boundary = Boundary.PARAGRAPH
    speaker: int = 1
    speed: float | None = None
    pause_ms: int | None = None
    stop: bool = True
    """Give the spoken text a closing stop if it has none (headings, list items)."""
    heading: bool = False
    turn: int = -1
    """The script turn this block belongs to: a turn that fits one chunk is never split."""


@dataclass
class SourceMap:
    """Piecewise map from content offsets to input offsets.

    A piece is exact when its content equals its source character for character; offsets
    inside other pieces (entity references, folded line ends, inserted text) map to its ends.
    """

    v0: list[int] = field(default_factory=list)
    v1: list[int] = field(default_factory=list)
    s0: list[int] = field(default_factory=list)
    s1: list[int] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)

    def add(self, v0: int, v1: int, s0: int, s1: int, exact: bool) -> None:
        self.v0.append(v0)
        self.v1.append(v1)
        self.s0.append(s0)
        self.s1.append(s1)
        self.exact.append(exact)

    def start(self, v: int) -> int:
        i = max(bisect_right(self.v0, v) - 1, 0)
        return self.s0[i] + (v - self.v0[i]) if self.exact[i] else self.s0[i]

    def end(self, v: int) -> int:
        i = max(bisect_right(self.v0, v - 1) - 1, 0)
        return self.s0[i] + (v - self.v0[i]) if self.exact[i] else self.s1[i]


@dataclass
class Doc:
    text: str
    blocks: list[Block]
    overrides: list[tuple[int, int, str]] = field(default_factory=list)
    """Sorted, disjoint ``(start, end, spoken)``: ranges said as given rather than normalised."""
    source: SourceMap | None = None
    """None: offsets are the input's own."""
    protected: list[tuple[int, int]] = field(default_factory=list)
    """Ranges nothing may cut inside (SSML substitutions). Other overrides only delete markup,
    so a cut through one just deletes its part on each side."""

    def __post_init__(self) -> None:
        self._override_starts = [o[0] for o in self.overrides]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        if self.source is None:
            return start, end
        return self.source.start(start), self.source.end(end)

    def speak_many(self, spans: list[tuple[int, int]], normalized: bool, finals: list[bool]) -> list[str]:
        """The spoken form of each ``text[start:end]``, normalised together; a final span gets a closing
        stop if it lacks one."""
        raws: list[str] = []
        layouts: list[list[int | str]] = []
        for start, end in spans:
            layout: list[int | str] = []
            pos = start
            if self.overrides:
                i = max(bisect_right(self._override_starts, start) - 1, 0)
                while i < len(self.overrides) and self.overrides[i][0] < end:
                    a, b, spoken = self.overrides[i]
                    i += 1
                    if b <= start:
                        continue
                    layout.append(len(raws))
                    raws.append(self.text[pos : max(a, start)])
                    if a >= start:
                        layout.append(spoken)
                    pos = min(b, end)
            layout.append(len(raws))
            raws.append(self.text[pos:end])
            layouts.append(layout)
        said = _say_many(raws, normalized)
        out = []
        for layout, final in zip(layouts, finals, strict=True):
            first = layout[0]
            if len(layout) == 1 and isinstance(first, int):
                text = " ".join(said[first].split())
            else:
                parts = [said[x] if isinstance(x, int) else x for x in layout]
                text = _SPACE_BEFORE_STOP.sub("", " ".join("".join(parts).split()))
            if CJK.search(text):
                text = _CJK_GAP.sub("", text)
            if final and text:
                text = with_stop(text)
            out.append(text)
        return out


_CJK_GAP = re.compile(rf"(?<=[{CJK_CHARS}])\s+(?=[{CJK_CHARS}])")
_SPACE_BEFORE_STOP = re.compile(r"\s+(?=[.,!?;:](?!\w))")


def _say_many(texts: list[str], normalized: bool) -> list[str]:
    """Texts normalised for speech, keeping whether each began or ended with a space (its neighbours may be
    substitutions); CJK texts are left as they are."""
    if not normalized:
        return texts
    english = [i for i, t in enumerate(texts) if t.strip() and not CJK.search(t)]
    out = list(texts)
    for i, said in zip(english, normalize_many([texts[i] for i in english]), strict=True):
        text = texts[i]
        out[i] = (" " if text[:1].isspace() else "") + said + (" " if text[-1:].isspace() else "")
    return out


def with_stop(text: str) -> str:
    """``text`` ending in punctuation, so a heading or list item is read as a unit."""
    core = text.rstrip(CLOSERS)
    if not core or core[-1] in _STOPS or not (core[-1].isalnum() or CJK.match(core[-1])):
        return text
    return text + ("。" if CJK.match(core[-1]) else ".")


def join_spoken(parts: list[str]) -> str:
    """Spoken texts of adjacent atoms: a space between them, none between CJK."""
    out: list[str] = []
    for part in parts:
        if not part:
            continue
        if out and not (CJK.match(out[-1][-1]) and CJK.match(part[0])):
            out.append(" ")
        out.append(part)
    return "".join(out)
