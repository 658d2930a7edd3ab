"""One chunk alone through synthesize_chunk: the engine or the cache, the stored chunk, its done marker."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from narrator.engines import Engine
from narrator.errors import EngineFailed, ObjectNotFound
from narrator.job.store import Done, JobStore, Manifest, cache_key
from narrator.job.synthesize import ChunkOutcome, synthesize_chunk

from .tone import RATE, RecordingStore, ToneEngine, item_voice, pitch, read, tone_pitch, tone_seconds, voice_b64

Staged = Callable[..., Manifest]
PLAIN = "One two three four five six. Seven eight nine ten eleven.\n\nTwelve thirteen fourteen."
SCRIPT = "Alice: Hello there friend.\nBob: Hi back to you.\nAlice: Good to see you."
CAST = {"Alice": 1, "Bob": 2}
VOICE, VOICE_2 = voice_b64(180.0), voice_b64(260.0)


def never() -> Engine:
    raise AssertionError("engine_for was called on a cache hit")


def test_a_chunk_through_the_engine(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    manifest = staged({"text": PLAIN})
    entry = manifest.chunks[1]
    outcome = synthesize_chunk(manifest.job_id, 1, manifest, store, lambda: engine)
    expected = tone_seconds(entry.text, manifest.params)
    assert (outcome.index, outcome.cached) == (1, False)
    assert outcome.seconds == pytest.approx(expected)
    job = JobStore(store, manifest.job_id)
    # The chunk, the same bytes under its content's name, and one done marker: only this chunk's.
    chunk = store.get_bytes(job.chunk_key(1))
    assert store.get_bytes(cache_key(entry.digest)) == chunk
    assert not store.exists(job.chunk_key(0)) and not store.exists(cache_key(manifest.chunks[0].digest))
    assert job.done() == {1: Done(seconds=round(expected, 3), cached=False)}
    assert job.progress().chunks_done == 1
    # The stored audio is the engine's: FLAC at the model's rate, its length and pitch.
    samples, rate = read(chunk)
    assert rate == RATE and len(samples) / rate == pytest.approx(expected, abs=1e-3)
    assert pitch(samples, rate) == pytest.approx(tone_pitch(entry.text), abs=2)
    assert [(i.text, i.index, i.job_id) for i in engine.inputs] == [(entry.text, 1, manifest.job_id)]


def test_the_same_digest_again_comes_from_the_cache(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    first = staged({"text": PLAIN})
    made = synthesize_chunk(first.job_id, 2, first, store, lambda: engine)
    # Another job whose first chunk is the same chunk: no engine, not even built.
    second = staged({"text": "Twelve thirteen fourteen."})
    assert second.chunks[0].digest == first.chunks[2].digest
    reused = synthesize_chunk(second.job_id, 0, second, store, never)
    assert (reused.index, reused.cached) == (0, True)
    assert reused.seconds == pytest.approx(made.seconds, abs=1e-3)
    job = JobStore(store, second.job_id)
    assert store.get_bytes(job.chunk_key(0)) == store.get_bytes(JobStore(store, first.job_id).chunk_key(2))
    assert job.done() == {0: Done(seconds=round(made.seconds, 3), cached=True)}
    assert len(engine.inputs) == 1


def test_a_chunk_run_twice_writes_the_same_object(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    manifest = staged({"text": PLAIN})
    job = JobStore(store, manifest.job_id)
    synthesize_chunk(manifest.job_id, 0, manifest, store, lambda: engine)
    before = store.get_bytes(job.chunk_key(0))
    again = synthesize_chunk(manifest.job_id, 0, manifest, store, never)  # a redelivered task
    assert again.cached and store.get_bytes(job.chunk_key(0)) == before
    # Two markers for one chunk (…-s and …-c): progress counts the chunk once, with its one length.
    # (Which marker "stands" is the first in LIST order, so the redelivery's "c": not pinned here.)
    assert list(job.done()) == [0] and job.progress().chunks_done == 1
    assert job.progress().audio_seconds == pytest.approx(again.seconds, abs=1e-3)


def test_the_engine_gets_the_manifests_settings_and_speakers(
    staged: Staged, store: RecordingStore, engine: ToneEngine
) -> None:
    manifest = staged({
        "text": SCRIPT, "speakers": CAST, "voices": {"1": VOICE, "2": VOICE_2}, "voice_settings": {"speed": 1.25},
    })
    for index in range(len(manifest.chunks)):
        synthesize_chunk(manifest.job_id, index, manifest, store, lambda: engine)
    stored = {n: store.get_bytes(key) for n, key in manifest.voices.items()}
    assert [i.index for i in engine.inputs] == [0, 1, 2]
    for item, entry in zip(engine.inputs, manifest.chunks, strict=True):
        assert item.text == entry.text
        assert dict(item.params) == manifest.params == {"speed": 1.25, "temperature": 0.8}
        assert item.speakers == (entry.speaker,)
        assert {n: v.data for n, v in item.voices.items()} == stored
    assert [i.speakers for i in engine.inputs] == [(1,), (2,), (1,)]
    # Chunks that say the same in different voices sound different (the tone follows the voice).
    assert item_voice(engine.inputs[0]) != item_voice(engine.inputs[1])


def test_a_chunks_own_settings_reach_the_engine(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    manifest = staged({
        "text": '<speak>Slow words here. <prosody rate="200%">Fast words here now.</prosody></speak>',
        "voice_settings": {"speed": 0.75},
    })
    outcomes = [synthesize_chunk(manifest.job_id, i, manifest, store, lambda: engine) for i in (0, 1)]
    assert [dict(i.params) for i in engine.inputs] == [
        {"speed": 0.75, "temperature": 0.8},
        {"speed": 1.5, "temperature": 0.8},  # the job's speed times the chunk's rate
    ]
    slow, fast = manifest.chunks
    assert [o.seconds for o in outcomes] == pytest.approx(
        [tone_seconds(slow.text, {"speed": 0.75}), tone_seconds(fast.text, {"speed": 1.5})], abs=1e-3
    )
    assert outcomes[1].seconds < outcomes[0].seconds


def test_an_engine_error_leaves_no_trace(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    manifest = staged({"text": PLAIN})
    engine.fail = EngineFailed("chunk 0: the GPU caught fire")
    with pytest.raises(EngineFailed, match="caught fire"):
        synthesize_chunk(manifest.job_id, 0, manifest, store, lambda: engine)
    job = JobStore(store, manifest.job_id)
    assert job.done() == {} and job.progress().chunks_done == 0
    assert not store.exists(job.chunk_key(0)) and not store.exists(cache_key(manifest.chunks[0].digest))
    # A retry after the error synthesizes afresh, and then it is done.
    engine.fail = None
    assert synthesize_chunk(manifest.job_id, 0, manifest, store, lambda: engine).cached is False
    assert list(job.done()) == [0]


def test_an_unstaged_voice_is_an_error_not_a_silent_default(
    staged: Staged, store: RecordingStore, engine: ToneEngine
) -> None:
    manifest = staged({"text": PLAIN, "voice": VOICE})
    store.delete(manifest.voices[1])
    with pytest.raises(ObjectNotFound):
        synthesize_chunk(manifest.job_id, 0, manifest, store, lambda: engine)
    assert engine.inputs == [] and JobStore(store, manifest.job_id).done() == {}


def test_outcome_and_marker_agree(staged: Staged, store: RecordingStore, engine: ToneEngine) -> None:
    manifest = staged({"text": PLAIN})
    outcomes: list[ChunkOutcome] = [
        synthesize_chunk(manifest.job_id, i, manifest, store, lambda: engine) for i in range(len(manifest.chunks))
    ]
    done = JobStore(store, manifest.job_id).done()
    assert {o.index: (round(o.seconds, 3), o.cached) for o in outcomes} == {
        i: (d.seconds, d.cached) for i, d in done.items()
    }
    assert JobStore(store, manifest.job_id).progress().audio_seconds == pytest.approx(
        float(np.sum([o.seconds for o in outcomes])), abs=3e-3
    )


def test_an_unreadable_cache_entry_is_synthesized_again(
    staged: Staged, store: RecordingStore, engine: ToneEngine
) -> None:
    manifest = staged({"text": PLAIN})
    entry = manifest.chunks[0]
    store.put_bytes(cache_key(entry.digest), b"half a FLAC file", "audio/flac")  # a crash mid-write elsewhere
    outcome = synthesize_chunk(manifest.job_id, 0, manifest, store, lambda: engine)
    assert outcome.cached is False and len(engine.inputs) == 1
    samples, rate = read(store.get_bytes(cache_key(entry.digest)))  # the entry is whole again
    assert len(samples) / rate == pytest.approx(outcome.seconds, abs=1e-3)
