"""Word times for captions: the chunk's own words (as written) placed on its audio.

The recogniser gives times for the words it aligned or heard; words it could not place
(not in its dictionary, or not heard) share the gap between their placed neighbours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .recogniser import Word
from .words import _SPEAKER_LABEL, words

#: A phrase caption ends after a word with one of these, or at the length limits.
_PHRASE_END = re.compile(r"[.,;:!?…—)\]\"”’]$")
PHRASE_WORDS = 8
PHRASE_CHARS = 42


class Timed(BaseModel):
    """A word as written in the chunk (punctuation kept), and where it is said, in seconds."""

    model_config = ConfigDict(frozen=True)

    text: str
    start: float
    end: float


def tokens(text: str) -> list[tuple[str, list[str]]]:
    """``text`` split at spaces, each piece with the words it says; pieces that say nothing
    (a dash, a lone quote) are joined to the piece before."""
    out: list[tuple[str, list[str]]] = []
    for piece in _SPEAKER_LABEL.sub(" ", text).split():
        said = words(piece)
        if not said and out:
            out[-1] = (f"{out[-1][0]} {piece}", out[-1][1])
        else:
            out.append((piece, said))
    return out


def place(text: str, times: Sequence[Word | None], start: float, end: float) -> list[Timed]:
    """``text``'s pieces with times, from ``times`` (one per word of ``words(text)``, None: unplaced).

    ``start`` and ``end`` bound the speech (the chunk's sound), for unplaced words at the edges.
    """
    filled = _fill(list(times), start, end)
    out, k = [], 0
    for piece, said in tokens(text):
        if not said:
            continue
        first, last = filled[k], filled[k + len(said) - 1]
        k += len(said)
        out.append(Timed(text=piece, start=round(first[0], 3), end=round(last[1], 3)))
    return out


def _fill(times: list[Word | None], start: float, end: float) -> list[tuple[float, float]]:
    """Every word a (start, end): unplaced runs share the gap between their neighbours evenly."""
    spans: list[tuple[float, float]] = []
    i = 0
    while i < len(times):
        word = times[i]
        if word is not None:
            spans.append((word.start, word.end))
            i += 1
            continue
        j = i
        while j < len(times) and times[j] is None:
            j += 1
        lo = spans[-1][1] if spans else start
        nxt = times[j] if j < len(times) else None
        hi = nxt.start if nxt is not None else max(lo, end)
        step = max(hi - lo, 0.0) / (j - i)
        spans.extend((lo + step * n, lo + step * (n + 1)) for n in range(j - i))
        i = j
    return spans


def phrases(timed: Sequence[Timed]) -> list[Timed]:
    """Words grouped into caption lines: a phrase ends at punctuation or at the length limits."""
    out: list[Timed] = []
    group: list[Timed] = []
    for word in timed:
        group.append(word)
        text = " ".join(w.text for w in group)
        if _PHRASE_END.search(word.text) or len(group) >= PHRASE_WORDS or len(text) >= PHRASE_CHARS:
            out.append(Timed(text=text, start=group[0].start, end=group[-1].end))
            group = []
    if group:
        out.append(Timed(text=" ".join(w.text for w in group), start=group[0].start, end=group[-1].end))
    return out
