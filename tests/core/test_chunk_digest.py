"""A chunk's cache digest covers whose voice its slots carry, not only its text."""

from __future__ import annotations

from narrator.job.admission import admit
from narrator.job.stage import chunk_entries
from narrator.models import ModelRegistry
from narrator.settings import Settings
from tests.support.comfy import ROOT

REGISTRY = ModelRegistry.from_dir(ROOT / "workflows")
VOICES = {1: "1" * 64, 2: "2" * 64, 3: "3" * 64}


def entries(script: str, voices: dict[int, str]) -> list[tuple[int, str, str]]:
    admitted = admit({"text": script, "model": "vibevoice-large"}, Settings(), REGISTRY)
    return [(e.speaker, e.text, e.digest) for e in chunk_entries(admitted, voices)]


def test_two_speakers_saying_the_same_sentence_do_not_share_audio() -> None:
    (one, two) = entries("Speaker 1: The same sentence, word for word.\nSpeaker 2: The same sentence, word for word.",
                         VOICES)
    # Both are written as slot 1: the text alone cannot tell them apart.
    assert one[:2] == (1, "Speaker 1: The same sentence, word for word.")
    assert two[:2] == (2, "Speaker 1: The same sentence, word for word.")
    assert one[2] != two[2]


def test_without_job_voices_speakers_still_differ() -> None:
    # Their slots carry the model's defaults, which may differ by speaker (voice_N).
    (one, three) = entries("Speaker 1: Once more.\nSpeaker 3: Once more.", {})
    assert one[1] == three[1] and one[2] != three[2]


def test_a_speakers_chunks_keep_their_digest_whatever_the_other_voices() -> None:
    script = "Speaker 1: Hello there.\nSpeaker 2: Hello back.\nSpeaker 1: Hello there."
    first, second, again = entries(script, VOICES)
    assert first == again  # the same speaker, text and voice: one cached chunk
    # Speaker 2's voice reaches only speaker 2's chunks: changing it leaves speaker 1's cache alone.
    changed = entries(script, {**VOICES, 2: "f" * 64})
    assert changed[0] == first and changed[1][2] != second[2]
    # Speaker 1's own voice is part of speaker 1's digest.
    assert entries(script, {**VOICES, 1: "e" * 64})[0][2] != first[2]
