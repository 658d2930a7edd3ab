"""Blocks into atoms (sentences, or pieces of one too long), atoms into chunks.

A chunk's size is the larger of its source span and its spoken text, so normalisation
("$1,234,567" grows) never pushes a chunk past ``max_chars``. Atoms pack greedily inside a
section (text between paragraph or heading boundaries); a section whose last chunk is short
borrows from the one before; chunks still shorter than ``min_chars`` merge with a
neighbour when both have the same speaker, speed and script turn and no explicit pause
between them. A script turn that fits one chunk is one section, so it is never split.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import sentences as seg
from .chunk import Boundary
from .doc import Doc, join_spoken

_HARD = frozenset({Boundary.PARAGRAPH, Boundary.HEADING})
_NEW_GROUP = frozenset({Boundary.SPEAKER, Boundary.BREAK})


@dataclass(slots=True)
class Atom:
    start: int
    end: int
    spoken: str
    after: Boundary
    block: int


@dataclass(slots=True)
class Packed:
    first: int
    last: int
    """Atom indices, inclusive."""
    group: int


_BATCH = 4096


def atoms(doc: Doc, max_chars: int, normalized: bool) -> list[Atom]:
    # Sentences of all blocks first, then their spoken text a batch at a time: normalising many
    # short texts in one pass is much cheaper than one at a time.
    spans: list[tuple[int, int]] = []
    finals: list[bool] = []
    owners: list[int] = []
    for bi, block in enumerate(doc.blocks):
        found = seg.sentences(doc.text, block.start, block.end, doc.protected)
        spans.extend(found)
        finals.extend(block.stop and i == len(found) - 1 for i in range(len(found)))
        owners.extend([bi] * len(found))
    out: list[Atom] = []
    for at in range(0, len(spans), _BATCH):
        batch = slice(at, at + _BATCH)
        spoken = doc.speak_many(spans[batch], normalized, finals[batch])
        for span, said, final, bi in zip(spans[batch], spoken, finals[batch], owners[batch], strict=True):
            pieces = _fit(doc, [span], [said], [final], max_chars, normalized, Boundary.SENTENCE)
            for ps, pe, text, kind in pieces[:-1]:
                # Mid-sentence a period belongs to an abbreviation ("Mrs."), not to the end of a sentence.
                if text.endswith(".") and not text.endswith(".."):
                    text = text[:-1]
                out.append(Atom(ps, pe, text, kind, bi))
            ps, pe, text, _ = pieces[-1]
            out.append(Atom(ps, pe, text, Boundary.SENTENCE, bi))
    for i, atom in enumerate(out):
        if i + 1 == len(out) or out[i + 1].block != atom.block:
            atom.after = doc.blocks[atom.block].after
    return out


Piece = tuple[int, int, str, Boundary]


def _fit(
    doc: Doc,
    spans: list[tuple[int, int]],
    spoken: list[str],
    finals: list[bool],
    max_chars: int,
    normalized: bool,
    kind: Boundary,
) -> list[Piece]:
    """Spans with their spoken text as pieces that fit ``max_chars``; ``kind`` is the cut after each span.

    A span too long is cut at clauses, then between words, then (in scripts written without
    spaces) between characters; a single word longer than a chunk stays whole.
    """
    out: list[Piece] = []
    for (s, e), said, final in zip(spans, spoken, finals, strict=True):
        if max(e - s, len(said)) <= max_chars:
            out.append((s, e, said, kind))
            continue
        if kind in (Boundary.SENTENCE, Boundary.PARAGRAPH):
            parts = seg.clauses(doc.text, s, e, doc.protected)
            if len(parts) > 1:
                out.extend(_fit_parts(doc, parts, final, max_chars, normalized, Boundary.CLAUSE, kind))
                continue
        words = seg.words(doc.text, s, e, doc.protected)
        if len(words) > 1:
            out.extend(_fit_words(doc, words, final, max_chars, normalized, kind))
        elif seg.NO_SPACE.search(doc.text, s, e):
            # Cut between characters; the pieces are final (a piece's closing stop may add one character).
            cuts = seg.graphemes(doc.text, s, e, max_chars)
            finals = [final and i == len(cuts) - 1 for i in range(len(cuts))]
            saids = doc.speak_many(cuts, normalized, finals)
            out.extend((cs, ce, sd, Boundary.WORD) for (cs, ce), sd in zip(cuts, saids, strict=True))
            cs, ce, sd, _ = out[-1]
            out[-1] = (cs, ce, sd, kind)
        else:
            out.append((s, e, said, kind))  # one word longer than a chunk stands alone
    return out


def _fit_parts(
    doc: Doc, parts: list[tuple[int, int]], final: bool, max_chars: int, normalized: bool, inner: Boundary,
    last: Boundary,
) -> list[Piece]:  # fmt: skip
    finals = [final and i == len(parts) - 1 for i in range(len(parts))]
    pieces = _fit(doc, parts, doc.speak_many(parts, normalized, finals), finals, max_chars, normalized, inner)
    s, e, said, _ = pieces[-1]
    pieces[-1] = (s, e, said, last)
    return pieces


def _fit_words(
    doc: Doc, words: list[tuple[int, int]], final: bool, max_chars: int, normalized: bool, last: Boundary
) -> list[Piece]:
    """Runs of whole words, read together so abbreviations and dates keep some context.

    Runs are at most half a chunk long, so the packer can still fill chunks with them.
    """
    limit = max(1, max_chars // 2)
    runs: list[list[tuple[int, int]]] = [[words[0]]]
    for w in words[1:]:
        if w[1] - runs[-1][0][0] <= limit:
            runs[-1].append(w)
        else:
            runs.append([w])
    spans = [(run[0][0], run[-1][1]) for run in runs]
    finals = [final and i == len(runs) - 1 for i in range(len(runs))]
    out: list[Piece] = []
    for run, span, said, fin in zip(runs, spans, doc.speak_many(spans, normalized, finals), finals, strict=True):
        if len(said) <= max_chars or len(run) == 1:
            out.extend(_fit(doc, [span], [said], [fin], max_chars, normalized, Boundary.WORD))
        elif len(run) > 8:  # reads longer than it is written: halve the run
            half = len(run) // 2
            out.extend(_fit_words(doc, run[:half], False, max_chars, normalized, Boundary.WORD))
            out.extend(_fit_words(doc, run[half:], fin, max_chars, normalized, Boundary.WORD))
        else:  # a few words: one by one, and let the packer join them
            out.extend(_fit_parts(doc, run, fin, max_chars, normalized, Boundary.WORD, Boundary.WORD))
    s, e, said, _ = out[-1]
    out[-1] = (s, e, said, last)
    return out


class _Costs:
    """O(1) size of any run of atoms."""

    def __init__(self, items: list[Atom]) -> None:
        self.items = items
        self.prefix = [0]
        total = 0
        for a in items:
            total += len(a.spoken) + 1  # +1: the space that may join it to the one before
            self.prefix.append(total)

    def spoken(self, i: int, j: int) -> int:
        return self.prefix[j + 1] - self.prefix[i] - 1

    def size(self, i: int, j: int) -> int:
        return max(self.items[j].end - self.items[i].start, self.spoken(i, j))


def pack(doc: Doc, items: list[Atom], max_chars: int, min_chars: int) -> list[Packed]:
    costs = _Costs(items)
    out: list[Packed] = []
    for group, sections in enumerate(_groups(doc, items, costs, max_chars)):
        for first, last in sections:
            out.extend(_greedy(costs, first, last, group, max_chars, min_chars))
    return _merge_short(doc, costs, out, max_chars, min_chars)


def _groups(doc: Doc, items: list[Atom], costs: _Costs, max_chars: int) -> list[list[tuple[int, int]]]:
    """Atom ranges: groups share speaker and speed; sections inside them end at hard boundaries."""
    turn_fits = _turns_that_fit(doc, items, costs, max_chars)
    groups: list[list[tuple[int, int]]] = [[]]
    start = 0
    for i, atom in enumerate(items):
        if i + 1 == len(items):
            groups[-1].append((start, i))
            break
        a, b = doc.blocks[atom.block], doc.blocks[items[i + 1].block]
        # A script turn is a group of its own: a chunk's span never holds a speaker label.
        new_group = atom.after in _NEW_GROUP or (a.speaker, a.speed, a.turn) != (b.speaker, b.speed, b.turn)
        hard = atom.after in _HARD and not (a.turn >= 0 and a.turn == b.turn and a.turn in turn_fits)
        if new_group or hard:
            groups[-1].append((start, i))
            start = i + 1
            if new_group:
                groups.append([])
    return [g for g in groups if g]


def _turns_that_fit(doc: Doc, items: list[Atom], costs: _Costs, max_chars: int) -> set[int]:
    spans: dict[int, tuple[int, int]] = {}
    for i, atom in enumerate(items):
        turn = doc.blocks[atom.block].turn
        if turn >= 0:
            first, _ = spans.get(turn, (i, i))
            spans[turn] = (first, i)
    return {turn for turn, (i, j) in spans.items() if costs.size(i, j) <= max_chars}


def _greedy(costs: _Costs, first: int, last: int, group: int, max_chars: int, min_chars: int) -> list[Packed]:
    out: list[Packed] = []
    i = first
    while i <= last:
        j = i
        while j < last and costs.size(i, j + 1) <= max_chars:
            j += 1
        out.append(Packed(i, j, group))
        i = j + 1
    # A short tail borrows atoms from the chunk before it.
    while len(out) >= 2:
        prev, tail = out[-2], out[-1]
        if costs.spoken(tail.first, tail.last) >= min_chars or prev.first == prev.last:
            break
        if costs.size(prev.last, tail.last) > max_chars or costs.spoken(prev.first, prev.last - 1) < min_chars:
            break
        prev.last -= 1
        tail.first -= 1
    return out


def _merge_short(doc: Doc, costs: _Costs, chunks: list[Packed], max_chars: int, min_chars: int) -> list[Packed]:
    """Merge chunks shorter than ``min_chars``, and chunks with nothing to say, into a neighbour that has room."""
    i = 0
    while i < len(chunks):
        c = chunks[i]
        if not _short(costs, c, min_chars):
            i += 1
            continue
        heading = doc.blocks[costs.items[c.last].block].heading
        merged = False
        for j in (i + 1, i - 1) if heading else (i - 1, i + 1):
            if not 0 <= j < len(chunks) or chunks[j].group != c.group:
                continue
            a, b = (chunks[j], c) if j < i else (c, chunks[j])
            if costs.size(a.first, b.last) <= max_chars:
                chunks[min(i, j)] = Packed(a.first, b.last, c.group)
                del chunks[max(i, j)]
                i = max(min(i, j) - 1, 0)
                merged = True
                break
        if not merged:
            i += 1
    return chunks


def _short(costs: _Costs, c: Packed, min_chars: int) -> bool:
    if costs.spoken(c.first, c.last) < min_chars:
        return True
    return all(not costs.items[k].spoken for k in range(c.first, c.last + 1))


def spoken_text(items: list[Atom], packed: Packed) -> str:
    return join_spoken([items[k].spoken for k in range(packed.first, packed.last + 1)])
