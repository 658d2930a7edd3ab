"""SQS as the broker (kombu's SQS transport against moto's server), Redis as the result backend."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from narrator import jobs
from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.deploy.test_metrics import Samples, samples_when, scrape, value
from tests.support.moto import DUMMY_CREDENTIALS, MotoServer
from tests.support.procs import RedisServer, WorkerPool, free_port

pytestmark = pytest.mark.integration

SENTENCE = "Chunk number {n} of the test carries a sentence that is long enough to stand on its own as speech."


@pytest.fixture
def sqs_settings(moto_server: MotoServer, redis_server: RedisServer, aws_env: None, tmp_path: Path) -> Settings:
    redis_server.flush()
    _reset_moto(moto_server)
    host = moto_server.endpoint_url.removeprefix("http://")
    return Settings(
        broker_url=f"sqs://testing:testing@{host}",
        result_backend=redis_server.url,
        storage_url=(tmp_path / "store").as_uri(),
        workflows_dir=PROJECT_WORKFLOWS,
    )


def _reset_moto(moto_server: MotoServer) -> None:
    import httpx

    httpx.post(f"{moto_server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


def test_ten_chunk_job_through_sqs(sqs_settings: Settings, worker_pool: WorkerPool, moto_server: MotoServer) -> None:
    env = dict(DUMMY_CREDENTIALS)
    gpu_port = free_port()
    worker_pool.start(sqs_settings, queues="narrator.cpu", concurrency=1, extra_env=env)
    worker_pool.start(sqs_settings, queues="narrator.gpu", concurrency=2,
                      extra_env={**env, "NARRATOR_METRICS_PORT": str(gpu_port)})

    text = "\n\n".join(SENTENCE.format(n=n) for n in range(1, 11))
    handle = jobs.submit({"text": text}, sqs_settings)  # paragraphs are hard chunk boundaries
    result = handle.wait(timeout=150)

    assert result.success and result.chunks == 10
    # The work went through SQS: narrator's queues are there, and empty.
    sqs = boto3.client("sqs", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    urls = sqs.list_queues().get("QueueUrls", [])
    assert any(url.endswith("/narrator-cpu") for url in urls), urls
    assert any(url.endswith("/narrator-gpu") for url in urls), urls
    # SQS carries no Celery events: the workers' own metrics are the monitoring.
    samples = samples_when(lambda: _chunks_done(gpu_port, 10), 20, "chunk metrics")
    assert value(samples, "narrator_chunks_started_total") == 10
    assert ("narrator_queue_depth", (("queue", "narrator.gpu"),)) in samples


def _chunks_done(port: int, n: int) -> Samples | None:
    samples = scrape(port)
    return samples if value(samples, "narrator_chunks_succeeded_total", cached="false") >= n else None
