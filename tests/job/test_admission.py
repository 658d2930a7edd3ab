"""Admission alone: what ``admit`` resolves for a request, and which field a refusal names.

The big corpus of bad inputs is tests/reliability; here a few of each kind, against the
models of a temporary workflows folder (tests/job/conftest.py).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from narrator.errors import InvalidRequest, ModelError
from narrator.job.admission import Admitted
from narrator.request import JobRequest

from .tone import voice_b64

PLAIN = "One two three four five six. Seven eight nine ten eleven.\n\nTwelve thirteen fourteen."
S1, S2, S3 = "One two three four five six.", "Seven eight nine ten eleven.", "Twelve thirteen fourteen."
SCRIPT = "Alice: Hello there friend.\nBob: Hi back to you.\nAlice: Good to see you."
CAST = {"Alice": 1, "Bob": 2}
VOICE = voice_b64(180.0)
VOICE_2 = voice_b64(260.0)


def chunks_of(admitted: Admitted) -> list[tuple[str, int, str]]:
    return [(c.spoken, c.speaker, str(c.boundary)) for c in admitted.chunks]


@pytest.mark.parametrize(
    ("request_", "model", "params", "chunks", "voices"),
    [
        pytest.param(
            {"text": PLAIN}, "tone", {"speed": 1.0, "temperature": 0.8},
            [(S1, 1, "sentence"), (S2, 1, "paragraph"), (S3, 1, "end")],
            [], id="defaults: the settings' model, its defaults, its chunk size",
        ),
        pytest.param(
            {"text": PLAIN, "voice_settings": {"speed": 1.25}}, "tone", {"speed": 1.25, "temperature": 0.8},
            [(S1, 1, "sentence"), (S2, 1, "paragraph"), (S3, 1, "end")],
            [], id="a setting given: the request's over the model's default",
        ),
        pytest.param(
            {"text": PLAIN, "model": "mono", "voice_settings": {"temperature": 0.5}}, "mono",
            {"speed": 1.0, "temperature": 0.5},
            [(f"{S1} {S2}", 1, "paragraph"), (S3, 1, "end")],
            [], id="another model: its own defaults and chunk size",
        ),
        pytest.param(
            {"text": SCRIPT, "speakers": CAST}, "tone", {"speed": 1.0, "temperature": 0.8},
            [("Hello there friend.", 1, "speaker"), ("Hi back to you.", 2, "speaker"), ("Good to see you.", 1, "end")],
            [], id="a script: a speaker per chunk",
        ),
        pytest.param(
            {"text": SCRIPT, "speakers": CAST, "reference_audio": VOICE, "voices": {"2": VOICE_2}}, "tone",
            {"speed": 1.0, "temperature": 0.8},
            [("Hello there friend.", 1, "speaker"), ("Hi back to you.", 2, "speaker"), ("Good to see you.", 1, "end")],
            [1, 2], id="base64 voices decoded, by speaker",
        ),
        pytest.param(
            {"text": "It costs $5.", "voice": "narrator-en"}, "tone", {"speed": 1.0, "temperature": 0.8},
            [("It costs five dollars.", 1, "end")], [], id="normalised text; a stored voice is read at staging",
        ),
        pytest.param(
            {"text": "It costs $5.", "normalize": False, "reference_audio_url": "https://93.184.216.34/v.wav"},
            "tone", {"speed": 1.0, "temperature": 0.8},
            [("It costs $5.", 1, "end")], [], id="no normalising; a URL voice is fetched at staging",
        ),
        pytest.param(
            {"text": '<speak>Hello there. <break time="700ms"/> Bye now.</speak>'}, "tone",
            {"speed": 1.0, "temperature": 0.8},
            [("Hello there.", 1, "break"), ("Bye now.", 1, "end")], [], id="SSML",
        ),
    ],
)
def test_what_admission_resolves(
    admitted_for: Callable[[Any], Admitted],
    request_: dict[str, Any],
    model: str,
    params: dict[str, Any],
    chunks: list[tuple[str, int, str]],
    voices: list[int],
) -> None:
    admitted = admitted_for(request_)
    assert admitted.request == JobRequest.parse(request_)
    assert admitted.model.name == model
    assert admitted.params == params
    assert all(isinstance(v, float) for v in admitted.params.values())  # converted by the engine's rules
    assert chunks_of(admitted) == chunks
    assert all(len(c.text) <= admitted.model.max_chunk_chars for c in admitted.chunks)
    assert sorted(admitted.voices) == voices


def test_a_base64_voice_comes_decoded(admitted_for: Callable[[Any], Admitted]) -> None:
    admitted = admitted_for({"text": SCRIPT, "speakers": CAST, "voice": VOICE, "voices": {"2": VOICE_2}})
    for speaker, given in ((1, VOICE), (2, VOICE_2)):
        expected, rate = sf.read(io.BytesIO(base64.b64decode(given)), dtype="float32")
        assert admitted.voices[speaker].sample_rate == rate
        assert np.array_equal(admitted.voices[speaker].samples, expected)


def test_a_data_uri_voice_is_decoded_too(admitted_for: Callable[[Any], Admitted]) -> None:
    admitted = admitted_for({"text": PLAIN, "voice": f"data:audio/wav;base64,{VOICE}"})
    assert list(admitted.voices) == [1] and admitted.voices[1].duration == pytest.approx(0.5)


def test_the_default_model_is_the_settings(settings: Any, registry: Any) -> None:
    from narrator.job.admission import admit

    assert admit({"text": PLAIN}, settings.with_(default_model="mono"), registry).model.name == "mono"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"text": "x" * 2001}, "text"),  # the settings' max_text_chars
        ({"text": "   "}, "text"),
        ({"text": PLAIN, "model": "nope"}, "model"),
        ({"text": PLAIN, "voice_settings": {"speed": 3.0}}, "voice_settings.speed"),  # the contract
        ({"text": PLAIN, "voice_settings": {"top_p": 0.9}}, "voice_settings.top_p"),  # the model has none
        ({"text": PLAIN, "voice_settings": {"seed": 7}}, "voice_settings.seed"),
        ({"text": PLAIN, "language": "de"}, "language"),
        ({"text": SCRIPT, "speakers": {"Alice": 1, "Bob": 4}}, "speakers.Bob"),  # tone voices 3
        ({"text": PLAIN, "voices": {"4": VOICE}}, "voices.4"),
        ({"text": PLAIN, "model": "mono", "voices": {"2": VOICE}}, "voices.2"),
        ({"text": PLAIN, "voice": "no-such-voice"}, "voice"),
        ({"text": PLAIN, "reference_audio": "not base64!"}, "reference_audio"),
        ({"text": PLAIN, "voice": base64.b64encode(b"RIFF but not audio").decode()}, "voice"),
        ({"text": PLAIN, "voice": "http://127.0.0.1/v.wav"}, "voice"),
        ({"text": PLAIN, "output": {"url_expires": 8 * 24 * 3600}}, "output.url_expires"),
        ({"text": PLAIN, "output": {"format": "ogg"}}, "output.format"),
    ],
)
def test_refusals_name_their_field(
    admitted_for: Callable[[Any], Admitted], request_: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        admitted_for(request_)
    assert refused.value.field == field


def test_a_default_the_engine_refuses_is_the_model_files_fault(admitted_for: Callable[[Any], Admitted]) -> None:
    with pytest.raises(ModelError, match="bad-default"):
        admitted_for({"text": PLAIN, "model": "bad-default"})
    # The request's own setting replaces the bad default: nothing of the model file's is left to refuse.
    assert admitted_for({"text": PLAIN, "model": "bad-default", "voice_settings": {"temperature": 0.5}}).params == {
        "speed": 1.0, "temperature": 0.5,
    }
