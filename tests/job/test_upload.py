"""Publishing alone: a joined job becomes its final object, captions, URLs and result record."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from narrator.job.concatenate import Joined
from narrator.job.delivery import with_inline_audio
from narrator.job.store import JobStore, Manifest
from narrator.job.synthesize import synthesize_chunk
from narrator.job.upload import publish
from narrator.result import JobResult, JobState
from narrator.settings import Settings

from .tone import DAY, WEEK, RecordingStore, ToneEngine, tone_seconds, voice_b64

Run = Callable[..., tuple[Manifest, Joined]]
PLAIN = "One two three four five six. Seven eight nine ten eleven.\n\nTwelve thirteen fourteen."


def published(joined: Run, store: RecordingStore, settings: Settings, request: dict[str, Any]) -> tuple[
    Manifest, Joined, JobResult
]:
    manifest, result = joined(request)
    return manifest, result, publish(manifest, result.key, result.duration, settings, store)


def test_the_final_object_and_captions(
    joined: Run, store: RecordingStore, settings: Settings
) -> None:
    manifest, result, record = published(joined, store, settings, {"text": PLAIN, "output": {"format": "flac"}})
    job = JobStore(store, manifest.job_id)
    assert record.output_key == job.output_key("flac")
    assert store.get_bytes(record.output_key) == store.get_bytes(result.key)
    for ext in ("srt", "vtt"):
        assert store.get_bytes(job.captions_key(ext)).decode() == result.captions[ext]


def test_the_result_record(joined: Run, store: RecordingStore, settings: Settings) -> None:
    request = {"text": PLAIN, "voice": voice_b64(), "output": {"format": "mp3", "sample_rate": 24000}}
    manifest, result, record = published(joined, store, settings, request)
    job = JobStore(store, manifest.job_id)
    assert record == job.result()  # what is stored is what publish returns
    assert record.success is True
    assert (record.job_id, record.format, record.sample_rate, record.chunks) == (manifest.job_id, "mp3", 24000, 3)
    assert record.duration_seconds == round(result.duration, 3)
    assert (record.text_length, record.seed_used) == (len(PLAIN), None)
    assert record.reference_used == manifest.reference_used
    assert record.reference_used.startswith("Using base64 reference (ref_b64_")
    assert [(r.source, r.used) for r in record.references] == [("base64", True)]
    assert (record.metrics.model, record.metrics.sample_rate) == ("tone", 24000)
    assert (record.metrics.chunks_synthesized, record.metrics.cache_hits) == (3, 0)
    assert 0 <= record.metrics.execution_time < 60
    assert record.audio_url == job.objects.presigned_url(job.output_key("mp3"), 1)
    assert record.captions_url == job.objects.presigned_url(job.captions_key("vtt"), 1)


def test_cache_hits_and_synthesized_chunks_come_from_the_done_markers(
    staged: Callable[..., Manifest], joined: Run, store: RecordingStore, settings: Settings, engine: ToneEngine
) -> None:
    # An earlier job already made two of this job's three chunks.
    earlier = staged({"text": "One two three four five six. Twelve thirteen fourteen."})
    assert len(earlier.chunks) == 2
    for index in range(len(earlier.chunks)):
        synthesize_chunk(earlier.job_id, index, earlier, store, lambda: engine)
    manifest, _, record = published(joined, store, settings, {"text": PLAIN})
    assert (record.metrics.chunks_synthesized, record.metrics.cache_hits) == (1, 2)
    done = JobStore(store, manifest.job_id).done()
    assert sorted(i for i, d in done.items() if d.cached) == [0, 2]


@pytest.mark.parametrize(
    ("output", "expires"),
    [
        ({}, DAY),  # the settings' default
        ({"url_expires": 60}, 60),
        ({"url_expires": WEEK}, WEEK),
    ],
)
def test_urls_live_as_delivery_decides(
    joined: Run, store: RecordingStore, settings: Settings, output: dict[str, Any], expires: int
) -> None:
    manifest, _, record = published(joined, store, settings, {"text": PLAIN, "output": output})
    job = JobStore(store, manifest.job_id)
    # The audio and every caption file (``captions``; ``captions_url`` is the WebVTT one).
    assert store.presigned == {job.output_key("wav"): expires, job.captions_key("vtt"): expires,
                               job.captions_key("srt"): expires}
    assert record.audio_url is not None and record.captions_url == record.captions["vtt"]
    assert set(record.captions) == {"srt", "vtt"} and record.verification is None


def test_a_lowered_maximum_caps_a_staged_jobs_urls(
    joined: Run, store: RecordingStore, settings: Settings
) -> None:
    """Admitted under one maximum, published under a lower one: the maximum at publishing rules."""
    manifest, result = joined({"text": PLAIN, "output": {"url_expires": WEEK}})
    publish(manifest, result.key, result.duration, settings.with_(presign_max_seconds=3600), store)
    assert set(store.presigned.values()) == {3600}


@pytest.mark.parametrize("audio_b64", [None, True, False])
def test_the_record_never_holds_audio(
    joined: Run, store: RecordingStore, settings: Settings, audio_b64: bool | None
) -> None:
    manifest, _, record = published(joined, store, settings, {"text": PLAIN, "output": {"audio_b64": audio_b64}})
    job = JobStore(store, manifest.job_id)
    assert record.audio_b64 is None
    stored = json.loads(store.get_bytes(job.result_key))
    assert stored["audio_b64"] is None
    # The audio goes inline only when an answer is made, read from the stored output.
    answer = with_inline_audio(record, job, settings)
    inline = base64.b64encode(store.get_bytes(record.output_key)).decode()
    assert answer.audio_b64 == (None if audio_b64 is False else inline)
    assert job.result() == record  # making the answer stored nothing


@pytest.mark.parametrize(("cap", "inlined"), [(10**7, True), (100, False)])
def test_inline_audio_follows_the_cap_at_answer_time(
    joined: Run, store: RecordingStore, settings: Settings, cap: int, inlined: bool
) -> None:
    manifest, _, record = published(joined, store, settings, {"text": PLAIN})
    answer = with_inline_audio(record, JobStore(store, manifest.job_id), settings.with_(audio_b64_max_bytes=cap))
    assert (answer.audio_b64 is not None) is inlined


def test_success_and_progress_complete(joined: Run, store: RecordingStore, settings: Settings) -> None:
    manifest, _, _ = published(joined, store, settings, {"text": PLAIN})
    job = JobStore(store, manifest.job_id)
    progress = job.progress()
    assert progress.state is JobState.SUCCESS and progress.state.final
    assert (progress.chunks_done, progress.chunks_total, progress.fraction) == (3, 3, 1.0)
    expected = sum(tone_seconds(e.text) for e in manifest.chunks)
    assert progress.audio_seconds == pytest.approx(expected, abs=3e-3)
    assert progress.error is None


def test_publishing_twice_is_one_result(joined: Run, store: RecordingStore, settings: Settings) -> None:
    """A redelivered upload task publishes the same objects and the same record (but its time)."""
    manifest, result = joined({"text": PLAIN})
    first = publish(manifest, result.key, result.duration, settings, store)
    again = publish(manifest, result.key, result.duration, settings, store)
    ignore = {"metrics"}
    assert again.model_dump(exclude=ignore) == first.model_dump(exclude=ignore)
    assert again.metrics.model_dump(exclude={"execution_time"}) == first.metrics.model_dump(
        exclude={"execution_time"}
    )
