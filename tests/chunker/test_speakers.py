"""Multi-speaker scripts: turns, names, limits, and the model's speaker format."""

from __future__ import annotations

import re

import pytest

from narrator.chunker import Boundary, chunk_text, speaker_text
from narrator.errors import InvalidRequest

SCRIPT = """\
The Play

Speaker 1: Hello there, how are you doing today? I hope well.
Speaker 2: Fine.
speaker 2: Really fine, thanks for asking.
Alice: I'm Alice.

And this is my second paragraph.
[4]: Ok.
Note: this line is not a label.
"""


def test_turns_carry_their_speaker_and_speaker_changes_are_boundaries() -> None:
    chunks = chunk_text(SCRIPT, 200, min_chars=0, speakers={"alice": 3}, max_speakers=4)
    assert [(c.speaker, c.text, c.boundary) for c in chunks] == [
        (1, "The Play", Boundary.HEADING),
        (1, "Hello there, how are you doing today? I hope well.", Boundary.SPEAKER),
        (2, "Fine.", Boundary.PARAGRAPH),  # the same speaker again: a new turn, not a new speaker
        (2, "Really fine, thanks for asking.", Boundary.SPEAKER),
        (3, "I'm Alice.\n\nAnd this is my second paragraph.", Boundary.SPEAKER),  # a turn that fits is one chunk
        (4, "Ok.\nNote: this line is not a label.", Boundary.END),
    ]


def test_labels_are_outside_every_span() -> None:
    chunks = chunk_text(SCRIPT, 200, min_chars=0, speakers={"Alice": 3})
    labels = re.compile(r"^(?:speaker \d|\[\d\]|alice):", re.IGNORECASE | re.MULTILINE)
    assert "".join("".join(SCRIPT[c.start : c.end].split()) for c in chunks) == "".join(labels.sub("", SCRIPT).split())
    assert all(c.text == SCRIPT[c.start : c.end] for c in chunks)


def test_names_match_regardless_of_case() -> None:
    chunks = chunk_text("ALICE: Hi.\nbob: Yo.", 100, speakers={"Alice": 1, "Bob": 2}, min_chars=0)
    assert [(c.speaker, c.spoken) for c in chunks] == [(1, "Hi."), (2, "Yo.")]


def test_unmapped_names_are_just_text() -> None:
    (chunk,) = chunk_text("Alice: Hi.\nNote: read this.", 100)
    assert chunk.speaker == 1 and chunk.text == "Alice: Hi.\nNote: read this."


def test_a_turn_longer_than_a_chunk_is_split_at_sentences() -> None:
    turn = "One sentence here. Another one follows. A third one ends it."
    chunks = chunk_text(f"Speaker 1: Hi.\nSpeaker 2: {turn}\nSpeaker 1: Bye.", 40, min_chars=0)
    assert [(c.speaker, c.text, c.boundary) for c in chunks] == [
        (1, "Hi.", Boundary.SPEAKER),
        (2, "One sentence here. Another one follows.", Boundary.SENTENCE),
        (2, "A third one ends it.", Boundary.SPEAKER),
        (1, "Bye.", Boundary.END),
    ]


def test_short_turns_never_merge_across_speakers() -> None:
    chunks = chunk_text("Speaker 1: Yes.\nSpeaker 2: No.\nSpeaker 1: Maybe.", 200, min_chars=50)
    assert [(c.speaker, c.spoken) for c in chunks] == [(1, "Yes."), (2, "No."), (1, "Maybe.")]


def test_too_many_speakers_names_the_speaker() -> None:
    with pytest.raises(InvalidRequest, match=r"speaker 'Speaker 3' is speaker 3, but this model voices at most 2"):
        chunk_text("Speaker 1: a\nSpeaker 3: b", 100, max_speakers=2)
    with pytest.raises(InvalidRequest, match=r"speaker 'Bob' is speaker 5, but this model voices at most 1 speaker$"):
        chunk_text("Bob: hi", 100, speakers={"Bob": 5}, max_speakers=1)


def test_speaker_numbers_start_at_one() -> None:
    with pytest.raises(InvalidRequest, match="speaker numbers start at 1") as err:
        chunk_text("Speaker 0: hi", 100)
    assert err.value.field == "text"


@pytest.mark.parametrize("speakers", [{"Bob": 0}, {"Bob": "2"}, {" ": 1}])
def test_bad_speaker_maps_are_refused(speakers: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest) as err:
        chunk_text("Bob: hi", 100, speakers=speakers)  # type: ignore[arg-type]
    assert err.value.field == "speakers"


def test_script_in_the_model_speaker_format() -> None:
    chunks = chunk_text("Speaker 1: Dr. Who?\nSpeaker 2: It costs $5.", 100, min_chars=0)
    # Each chunk names its one speaker as voice slot 1; the slot carries that speaker's voice.
    assert [speaker_text(c, "Speaker {n}: {text}") for c in chunks] == [
        "Speaker 1: Doctor Who?",
        "Speaker 1: It costs five dollars.",
    ]
    assert [c.slots.speakers for c in chunks] == [(1,), (2,)]


def test_a_label_on_its_own_line_starts_the_turn_below_it() -> None:
    chunks = chunk_text("Speaker 1:\nHello there.\nHow are you?\n\nSpeaker 2:\n  Fine.", 200, min_chars=0)
    assert [(c.speaker, c.text) for c in chunks] == [(1, "Hello there.\nHow are you?"), (2, "Fine.")]
