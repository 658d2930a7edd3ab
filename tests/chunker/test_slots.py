"""Speaker slots: the speakers of a chunk, sorted, become slots 1..k in the text the model is given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrator.chunker import Boundary, Chunk, slot_text, speaker_slots, speaker_text

CASES = [
    # (job speaker, text) lines -> (slot, text) lines, job speakers voiced by slots 1..k
    ([(1, "a")], [(1, "a")], (1,)),
    ([(2, "a")], [(1, "a")], (2,)),  # any speaker alone is slot 1
    ([(3, "a")], [(1, "a")], (3,)),
    ([(4, "a")], [(1, "a")], (4,)),
    ([(1, "a"), (2, "b")], [(1, "a"), (2, "b")], (1, 2)),
    ([(1, "a"), (2, "b"), (3, "c")], [(1, "a"), (2, "b"), (3, "c")], (1, 2, 3)),
    ([(1, "a"), (2, "b"), (3, "c"), (4, "d")], [(1, "a"), (2, "b"), (3, "c"), (4, "d")], (1, 2, 3, 4)),
    ([(1, "a"), (3, "b")], [(1, "a"), (2, "b")], (1, 3)),  # gaps close up
    ([(2, "a"), (4, "b")], [(1, "a"), (2, "b")], (2, 4)),
    ([(2, "a"), (3, "b"), (4, "c")], [(1, "a"), (2, "b"), (3, "c")], (2, 3, 4)),
    ([(4, "a"), (2, "b")], [(2, "a"), (1, "b")], (2, 4)),  # sorted by speaker, not by who speaks first
    ([(3, "a"), (1, "b"), (4, "c"), (2, "d")], [(3, "a"), (1, "b"), (4, "c"), (2, "d")], (1, 2, 3, 4)),
    ([(3, "a"), (1, "b"), (3, "c")], [(2, "a"), (1, "b"), (2, "c")], (1, 3)),  # a repeated speaker keeps its slot
    ([(2, "a"), (2, "b")], [(1, "a"), (1, "b")], (2,)),
    ([], [], ()),
]


@pytest.mark.parametrize(("lines", "slotted", "speakers"), CASES)
def test_speakers_become_slots_one_to_k(
    lines: list[tuple[int, str]], slotted: list[tuple[int, str]], speakers: tuple[int, ...]
) -> None:
    slots = speaker_slots(lines)
    assert slots.lines == tuple(slotted)
    assert slots.speakers == speakers


@given(st.lists(st.tuples(st.integers(1, 16), st.text(max_size=3)), max_size=8))
def test_every_line_keeps_its_speaker_through_its_slot(lines: list[tuple[int, str]]) -> None:
    slots = speaker_slots(lines)
    assert {n for n, _ in slots.lines} == set(range(1, len(slots.speakers) + 1))
    assert [(slots.speakers[n - 1], text) for n, text in slots.lines] == lines


def test_slot_text_writes_one_line_per_slot() -> None:
    slots = speaker_slots([(4, "Hi."), (2, "Yo."), (4, "Bye.")])
    assert slot_text(slots, "Speaker {n}: {text}") == "Speaker 2: Hi.\nSpeaker 1: Yo.\nSpeaker 2: Bye."


@pytest.mark.parametrize("speaker", [1, 2, 3, 4])
def test_a_chunk_names_its_speaker_as_slot_one(speaker: int) -> None:
    chunk = Chunk(0, "Hi.", 0, 3, Boundary.END, speaker=speaker, spoken="Hi.")
    assert speaker_text(chunk, "Speaker {n}: {text}") == "Speaker 1: Hi."
    assert chunk.slots.speakers == (speaker,)
