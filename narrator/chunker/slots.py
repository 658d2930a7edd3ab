"""Speaker slots: how the speakers of one chunk are numbered in the text a model is given.

A chunk's text does not name the job's speakers; it names slots. The speakers present
in the chunk, sorted, become slots 1..k, and voice slot j carries the voice of the j-th
of them. Why: the wildminder VibeVoice node (commit d04665d) binds the voices of the
speaker ids in the text, sorted (vibevoice_nodes.py:114-121), and the processor it ships
then labels those voice prompts 0, 1, 2, ... in list order
(vibevoice/processor/vibevoice_processor.py:407-408) while renumbering the text's ids by
subtracting 1 whenever the lowest is above 0 (vibevoice_processor.py:606-613). Only the
ids 1..k keep both numberings in step; a chunk for speaker 2 alone written as
``Speaker 2:`` would be read as speaker 1 with no voice prompt of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeakerSlots:
    lines: tuple[tuple[int, str], ...]
    """(slot, text) per line, in the order given."""
    speakers: tuple[int, ...]
    """``speakers[j - 1]`` is the job speaker whose voice slot j carries (ascending)."""


def speaker_slots(lines: Iterable[tuple[int, str]]) -> SpeakerSlots:
    """Renumber ``(speaker, text)`` lines so the speakers present become slots 1..k, in speaker order.

    Sorted rather than in order of appearance, so that a chunk's slots do not depend on
    who speaks first (and the node sorts the ids it reads anyway).
    """
    given = tuple(lines)
    speakers = tuple(sorted({speaker for speaker, _ in given}))
    slot = {speaker: j for j, speaker in enumerate(speakers, start=1)}
    return SpeakerSlots(tuple((slot[speaker], text) for speaker, text in given), speakers)
