"""Staging alone: the manifest it writes, the staged marker, the voices it stores, the chunk digests."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from narrator import audio
from narrator.job.store import INLINE_AUDIO, JobStore, Manifest
from narrator.request import JobRequest
from narrator.result import JobState
from narrator.settings import Settings
from narrator.storage import open_store

from .tone import RATE, RecordingStore, voice_b64

PLAIN = "One two three four five six. Seven eight nine ten eleven.\n\nTwelve thirteen fourteen."
SCRIPT = "Alice: Hello there friend.\nBob: Hi back to you.\nAlice: Good to see you."
CAST = {"Alice": 1, "Bob": 2}
VOICE = voice_b64(180.0)
VOICE_2 = voice_b64(260.0)

Staged = Callable[..., Manifest]


def entries(manifest: Manifest) -> list[tuple[Any, ...]]:
    return [
        (e.index, e.text, e.caption, e.boundary, e.speaker, e.pause_ms, e.params) for e in manifest.chunks
    ]


def test_the_manifest_of_a_plain_job(staged: Staged, store: RecordingStore, job_id: str) -> None:
    request = {"text": PLAIN, "voice_settings": {"speed": 1.25}, "output": {"format": "mp3", "audio_b64": False}}
    manifest = staged(request, job_id)
    assert manifest.job_id == job_id
    assert manifest.request == JobRequest.parse(request)  # typed: the request as admitted
    assert (manifest.model, manifest.format, manifest.sample_rate) == ("tone", "mp3", RATE)
    assert manifest.params == {"speed": 1.25, "temperature": 0.8}
    assert (manifest.voices, manifest.seed_used) == ({}, None)
    assert manifest.reference_used == "Using default tone voice reference"
    assert manifest.text_length == len(PLAIN)
    assert entries(manifest) == [
        (0, "Speaker 1: One two three four five six.", "One two three four five six.", "sentence", 1, None, None),
        (1, "Speaker 1: Seven eight nine ten eleven.", "Seven eight nine ten eleven.", "paragraph", 1, None, None),
        (2, "Speaker 1: Twelve thirteen fourteen.", "Twelve thirteen fourteen.", "end", 1, None, None),
    ]
    # Offsets point into the text as given: a caption is its source.
    assert [PLAIN[e.start : e.end] for e in manifest.chunks] == [e.caption for e in manifest.chunks]
    # What a reader of the store finds is what staging returned.
    assert JobStore(store, job_id).manifest() == manifest


def test_the_staged_marker_follows_the_manifest(staged: Staged, store: RecordingStore, job_id: str) -> None:
    job = JobStore(store, job_id)
    assert job.state() is JobState.PENDING
    manifest = staged({"text": PLAIN}, job_id)
    assert store.list(job.prefix + "staged/") == [job.staged_key(3)]
    assert job.state() is JobState.SYNTHESIZING
    progress = job.progress()
    assert (progress.chunks_total, progress.chunks_done, progress.audio_seconds) == (len(manifest.chunks), 0, 0.0)


def test_the_store_is_the_one_the_settings_open(staged: Staged, settings: Settings, job_id: str) -> None:
    staged({"text": PLAIN}, job_id)
    assert JobStore(open_store(settings), job_id).state() is JobState.SYNTHESIZING


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(
            {"text": SCRIPT, "speakers": CAST},
            [
                (0, "Speaker 1: Hello there friend.", "Hello there friend.", "speaker", 1, None, None),
                # Speaker 2 alone in its chunk is written as slot 1 (narrator.chunker.slots).
                (1, "Speaker 1: Hi back to you.", "Hi back to you.", "speaker", 2, None, None),
                (2, "Speaker 1: Good to see you.", "Good to see you.", "end", 1, None, None),
            ],
            id="script",
        ),
        pytest.param(
            {"text": "It costs $5. Bye now."},
            [(0, "Speaker 1: It costs five dollars. Bye now.", "It costs $5. Bye now.", "end", 1, None, None)],
            id="the engine gets normalised text, captions the source",
        ),
        pytest.param(
            {
                "text": '<speak>Hello there. <break time="700ms"/><prosody rate="150%">Fast words here.</prosody>'
                " The end.</speak>",
                "voice_settings": {"speed": 0.8},
            },
            [
                (0, "Speaker 1: Hello there.", "Hello there.", "break", 1, 700, None),
                (1, "Speaker 1: Fast words here.", "Fast words here.", "sentence", 1, None,
                 {"speed": 1.2, "temperature": 0.8}),
                (2, "Speaker 1: The end.", "The end.", "end", 1, None, None),
            ],
            id="SSML: a break's pause, a prosody rate times the job's speed",
        ),
        pytest.param(
            {"text": '<speak>Hello there. <break time="700ms"/> 🎉 <break time="900ms"/> Bye now.</speak>'},
            [
                (0, "Speaker 1: Hello there.", "Hello there.", "break", 1, 900, None),
                (1, "Speaker 1: Bye now.", "Bye now.", "end", 1, None, None),
            ],
            id="a chunk with nothing to say is left out, its pause kept on the one before",
        ),
        pytest.param(
            {"text": "Mono words are here. And more of them.", "model": "mono"},
            [(0, "Mono words are here. And more of them.", "Mono words are here. And more of them.", "end", 1, None,
              None)],
            id="a model without a speaker format",
        ),
    ],
)
def test_chunk_entries(staged: Staged, request_: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    manifest = staged(request_)
    assert entries(manifest) == expected
    assert manifest.chunks[-1].boundary == "end"
    assert len({e.digest for e in manifest.chunks}) == len(manifest.chunks)


def test_voices_are_stored_and_referenced_not_kept_inline(
    staged: Staged, store: RecordingStore, job_id: str
) -> None:
    manifest = staged({"text": SCRIPT, "speakers": CAST, "reference_audio": VOICE, "voices": {"2": VOICE_2}}, job_id)
    job = JobStore(store, job_id)
    assert manifest.voices == {1: job.voice_key(1), 2: job.voice_key(2)}
    assert re.fullmatch(r"Using base64 reference \(ref_b64_\w{8}\.wav\) for speaker 1, "
                        r"base64 reference \(ref_b64_\w{8}\.wav\) for speaker 2", manifest.reference_used)
    assert manifest.request.reference_audio == INLINE_AUDIO and manifest.request.voices == {"2": INLINE_AUDIO}
    assert VOICE not in store.get_bytes(job.manifest_key).decode()
    for speaker, given in ((1, VOICE), (2, VOICE_2)):
        stored = store.get_bytes(job.voice_key(speaker))
        # Normalised to the model's rate, mono 16-bit; the same bytes whichever way it came in.
        info = sf.info(io.BytesIO(stored))
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
        assert stored == audio.normalise_voice(
            base64.b64decode(given), field="voice", max_seconds=60, sample_rate=RATE
        )


def test_a_stored_voice_by_name(staged: Staged, store: RecordingStore, workflows: Path, job_id: str) -> None:
    manifest = staged({"text": PLAIN, "voice": "narrator-en"}, job_id)
    assert manifest.request.voice == "narrator-en"  # a name is kept: it is small
    stored = store.get_bytes(manifest.voices[1])
    source = (workflows / "voices" / "narrator-en.wav").read_bytes()
    assert stored == audio.normalise_voice(source, field="voice", max_seconds=60, sample_rate=RATE)


def test_a_model_without_cloning_stores_no_voice(staged: Staged, store: RecordingStore, job_id: str) -> None:
    manifest = staged({"text": PLAIN, "model": "mono", "reference_audio": VOICE}, job_id)
    assert manifest.voices == {}
    assert manifest.reference_used.startswith("Not using base64 reference (ref_b64_")
    assert manifest.reference_used.endswith("model mono clones no voice; using its default voice")
    assert store.list(JobStore(store, job_id).prefix + "voices/") == []


def test_output_rate_is_the_requests_else_the_models(staged: Staged) -> None:
    assert staged({"text": PLAIN}).sample_rate == RATE
    assert staged({"text": PLAIN, "output": {"sample_rate": 24000}}).sample_rate == 24000


# Digests: equal inputs, equal digest (the cache is shared); anything that decides the audio changes it.


def digests(manifest: Manifest) -> list[str]:
    return [e.digest for e in manifest.chunks]


def test_equal_inputs_equal_digests(staged: Staged, workflows: Path) -> None:
    request = {"text": SCRIPT, "speakers": CAST, "voice": VOICE}
    first = staged(request)
    assert digests(staged(request)) == digests(first)
    # What does not reach the engine does not split the cache: output format, rate, delivery.
    assert digests(staged({**request, "output": {"format": "flac", "sample_rate": 24000, "audio_b64": False}})) == (
        digests(first)
    )
    # A chunk is a chunk whatever job it is in.
    other = staged({"text": "Alice: Good to see you.\nBob: Something else entirely.", "speakers": CAST, "voice": VOICE})
    assert other.chunks[0].text == first.chunks[2].text and other.chunks[0].digest == first.chunks[2].digest
    # The same voice audio, given inline or by name: the same normalised bytes, the same digest.
    by_name = staged({"text": PLAIN, "voice": "narrator-en"})
    file = (workflows / "voices" / "narrator-en.wav").read_bytes()
    inline = staged({"text": PLAIN, "voice": base64.b64encode(file).decode()})
    assert digests(by_name) == digests(inline)


BASE = {"text": "Alice: Same words here.", "speakers": {"Alice": 1, "Bob": 2}, "voices": {"1": VOICE, "2": VOICE_2}}


@pytest.mark.parametrize(
    ("change", "same_digest"),
    [
        pytest.param({"text": "Alice: Same words there."}, False, id="text"),
        pytest.param({"voice_settings": {"speed": 1.1}}, False, id="params"),
        pytest.param({"voice_settings": {"temperature": 0.8}}, True, id="params equal to the defaults"),
        pytest.param({"voices": {"1": voice_b64(200.0), "2": VOICE_2}}, False, id="the speaker's voice"),
        pytest.param({"voices": {"1": VOICE, "2": voice_b64(200.0)}}, True, id="another speaker's voice"),
        pytest.param({"voices": {"2": VOICE_2}}, False, id="no voice for the speaker"),
        pytest.param({"text": "Bob: Same words here."}, False, id="speaker slot: same text, another speaker"),
        pytest.param({"model": "tone-copy"}, False, id="model"),
        pytest.param({"text": "Alice:   Same words   here."}, True, id="whitespace the chunker folds"),
        pytest.param({"output": {"format": "opus", "url_expires": 60}}, True, id="output"),
    ],
)
def test_what_changes_a_digest(staged: Staged, change: dict[str, Any], same_digest: bool) -> None:
    base, changed = staged(BASE), staged({**BASE, **change})
    if "text" not in change or change["text"].startswith("Bob"):
        assert changed.chunks[0].text == base.chunks[0].text  # the engine's text alone would not tell them apart
    assert (changed.chunks[0].digest == base.chunks[0].digest) is same_digest


def test_the_speaker_is_in_the_digest_without_any_voice(staged: Staged) -> None:
    """Slot 1 carries speaker 1's or speaker 2's default voice: the same text, two different sounds."""
    cast = {"Alice": 1, "Bob": 2}
    alice = staged({"text": "Alice: Same words here.", "speakers": cast})
    bob = staged({"text": "Bob: Same words here.", "speakers": cast})
    assert alice.chunks[0].text == bob.chunks[0].text and alice.voices == bob.voices == {}
    assert alice.chunks[0].digest != bob.chunks[0].digest


def test_the_workflow_file_is_in_the_digest(staged: Staged, workflows: Path) -> None:
    before = staged(BASE)
    (workflows / "tone.json").write_text('{"1": {"class_type": "Tone", "inputs": {"steps": 2}}}')
    after = staged(BASE)
    assert after.chunks[0].text == before.chunks[0].text
    assert after.chunks[0].digest != before.chunks[0].digest

