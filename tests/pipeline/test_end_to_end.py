"""The whole pipeline through a real Redis broker and real Celery worker processes."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from narrator import jobs
from narrator.engines import SynthesisInput, get_engine
from narrator.errors import InvalidRequest
from narrator.models import ModelRegistry
from narrator.settings import Settings
from narrator.storage import open_store
from tests.pipeline.checks import assert_chunks_in_order
from tests.support.procs import WorkerPool

TEXT = (
    "The old lighthouse stood at the end of the point. Its keeper climbed the stairs every evening.\n\n"
    "One night the lamp would not light. He tried the wick, the oil, and the glass, and still it stayed dark. "
    "Far out at sea, a ship was turning toward the rocks.\n\n"
    "He ran down to the boat house, lit a lantern, and rowed into the wind."
)

pytestmark = pytest.mark.integration


def in_process_seconds(settings: Settings, texts: list[str]) -> float:
    spec = ModelRegistry.from_dir(settings.workflows_dir).get("local")
    assert spec is not None
    engine = get_engine(spec, settings)
    return sum(engine.synthesize(SynthesisInput(text=t)).duration for t in texts)


def test_job_through_redis_and_workers(broker_settings: Settings, worker_pool: WorkerPool) -> None:
    worker_pool.start(broker_settings, queues="narrator.cpu", concurrency=1)
    worker_pool.start(broker_settings, queues="narrator.gpu", concurrency=1)

    seen: list[int] = []
    handle = jobs.submit({"text": TEXT, "output": {"format": "flac"}}, broker_settings.with_())
    result = handle.wait(timeout=120, on_progress=lambda p: seen.append(p.chunks_done))

    assert result.success and result.job_id == handle.id
    assert result.format == "flac" and result.sample_rate == 22050
    assert result.chunks >= 3
    assert result.text_length == len(TEXT)
    assert result.metrics.model == "local" and result.metrics.chunks_synthesized == result.chunks
    assert seen == sorted(seen) and seen[-1] == result.chunks

    store = open_store(broker_settings)
    data = store.get_bytes(result.output_key)
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == 22050
    assert abs(len(samples) / rate - result.duration_seconds) < 0.05
    # The chunks, in order, are what the output is made of: each chunk's audio is found
    # in the output after the previous one's.
    manifest_texts = [c.text for c in handle.job_store.manifest().chunks]
    expected = in_process_seconds(broker_settings, manifest_texts)
    assert abs(result.duration_seconds - expected) / expected < 0.25, (result.duration_seconds, expected)
    assert_chunks_in_order(store, handle.id, result.chunks, samples, rate)


def test_bad_request_is_refused_before_anything_is_queued(broker_settings: Settings) -> None:
    import redis

    client = redis.Redis.from_url(broker_settings.broker_url)
    before = client.dbsize()
    with pytest.raises(InvalidRequest, match="^voice_settings.speed"):
        jobs.submit({"text": "Hello.", "voice_settings": {"speed": 7}}, broker_settings)
    assert client.dbsize() == before
    store = open_store(broker_settings)
    assert store.list("jobs/") == []
