"""What a result says about its voices: the seed worker's sentence, and the facts beside it."""

from __future__ import annotations

import pytest

from narrator.job.references import references, sentence
from narrator.models import load_model_file
from narrator.request import VoiceInput
from narrator.settings import PROJECT_WORKFLOWS

VIBE = load_model_file(PROJECT_WORKFLOWS / "vibevoice-large.toml")
LOCAL = load_model_file(PROJECT_WORKFLOWS / "local.toml")
B64 = VoiceInput(kind="base64", value="UklGRiQAAABXQVZF", field="reference_audio")
URL = VoiceInput(kind="url", value="https://user:pw@voices.example.com/a/b/maya.wav?X-Amz-Signature=abc",
                 field="reference_audio_url")
STORED = VoiceInput(kind="name", value="alice", field="voice")

CASES = [
    ("no voice, cloning model", VIBE, {}, "Using default narrator-default.flac reference"),
    ("no voice, one-voice model", LOCAL, {}, "Using default voice of model local (it clones no reference)"),
    ("base64", VIBE, {1: B64}, "Using base64 reference (ref_b64_bdb847b1.wav)"),
    ("URL: host and file only", VIBE, {1: URL}, "Using URL reference (voices.example.com/maya.wav)"),
    ("stored", VIBE, {1: STORED}, "Using stored reference (alice)"),
    ("two speakers", VIBE, {1: B64, 2: STORED},
     "Using base64 reference (ref_b64_bdb847b1.wav) for speaker 1, stored reference (alice) for speaker 2"),
    ("given, model cannot clone", LOCAL, {1: URL},
     "Not using URL reference (voices.example.com/maya.wav): model local clones no voice; using its default voice"),
]


@pytest.mark.parametrize(("model", "inputs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sentence(model, inputs, expected) -> None:  # type: ignore[no-untyped-def]
    assert sentence(references(inputs, model), model) == expected


def test_facts_name_each_speaker_and_whether_it_was_used() -> None:
    facts = [r.model_dump() for r in references({1: B64, 2: URL}, LOCAL)]
    assert facts == [
        {"speaker": 1, "source": "base64", "name": "ref_b64_bdb847b1.wav", "used": False},
        {"speaker": 2, "source": "url", "name": "voices.example.com/maya.wav", "used": False},
    ]


def test_no_credential_or_signature_in_what_is_said() -> None:
    said = sentence(references({1: URL}, VIBE), VIBE)
    assert "pw" not in said and "Signature" not in said and "user" not in said
