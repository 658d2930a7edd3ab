"""The chunk's words against the words heard: which were heard, and how the two differ.

The score is *coverage*: the share of the text's words that the recogniser heard, in
order (matched by an edit-distance alignment, so a word heard out of place does not
count). Word error rate is reported beside it. With a weak recogniser neither number
alone separates good chunks from bad (see bench/bench_verify.py); the verdict combines
them with the signal checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


@dataclass(frozen=True)
class Comparison:
    matched: tuple[int | None, ...]
    """For each text word, the index of the heard word it matched; None: not heard."""
    heard: int
    """How many words were heard."""
    distance: int
    """Word edits from the text to what was heard."""

    @property
    def coverage(self) -> float:
        """Share of the text's words heard, in order: 0 to 1 (1 for no words)."""
        if not self.matched:
            return 1.0
        return sum(m is not None for m in self.matched) / len(self.matched)

    @property
    def wer(self) -> float:
        """Word error rate: edits over text words (above 1 when far more was heard than written)."""
        return self.distance / len(self.matched) if self.matched else float(self.heard > 0)

    @property
    def length_ratio(self) -> float:
        """Words heard per word written: about 2 when a chunk says its text twice."""
        return self.heard / len(self.matched) if self.matched else float(self.heard)


def compare(text: Sequence[str], heard: Sequence[str]) -> Comparison:
    """Align ``heard`` to ``text`` word by word (equal words matched in order)."""
    matched: list[int | None] = [None] * len(text)
    for op in Levenshtein.opcodes(list(text), list(heard)):
        if op.tag == "equal":
            for k in range(op.src_end - op.src_start):
                matched[op.src_start + k] = op.dest_start + k
    return Comparison(tuple(matched), len(heard), Levenshtein.distance(list(text), list(heard)))
