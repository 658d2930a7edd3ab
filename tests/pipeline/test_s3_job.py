"""The whole job against a real S3 API: the object, its captions, its presigned URL; on moto's
server and on SeaweedFS (the compose stack's server) with the workers' bucket-scoped key."""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile as sf

from narrator import jobs
from narrator.settings import Settings
from narrator.storage import open_store
from tests.support.procs import WorkerPool
from tests.support.seaweed import S3Target

pytestmark = pytest.mark.integration

TEXT = (
    "Storage is the source of truth for every job. The workers only pass keys to each other.\n\n"
    "When the last chunk is joined, the result is uploaded and a link is signed for it."
)


def test_job_on_s3(broker_settings: Settings, s3_target: S3Target, worker_pool: WorkerPool) -> None:
    s3_settings = s3_target.settings
    # The workers inherit this process's AWS_* environment: the worker key, on SeaweedFS.
    settings = broker_settings.with_(storage_url=s3_settings.storage_url, s3_endpoint_url=s3_settings.s3_endpoint_url)
    worker_pool.start(settings, queues="narrator.cpu,narrator.gpu", concurrency=2)

    handle = jobs.submit({"text": TEXT, "output": {"format": "wav", "url_expires": 600}}, settings)
    result = handle.wait(timeout=120)

    store = open_store(settings)
    data = store.get_bytes(result.output_key)
    assert result.output_key == f"jobs/{handle.id}/output.wav"
    assert result.audio_url is not None and result.audio_url.startswith(s3_settings.s3_endpoint_url)
    assert "X-Amz-Expires=600" in result.audio_url
    downloaded = httpx.get(result.audio_url, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == data
    samples, rate = sf.read(io.BytesIO(downloaded.content))
    assert abs(len(samples) / rate - result.duration_seconds) < 0.05

    assert result.captions_url is not None
    captions = httpx.get(result.captions_url, timeout=30).text
    assert captions.startswith("WEBVTT") and "source of truth" in captions
    assert store.exists(f"jobs/{handle.id}/output.srt")
    # Intermediate objects stay under the job's folder; the content cache holds each chunk once.
    assert len(store.list("cache/")) == result.chunks
