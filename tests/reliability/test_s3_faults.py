"""S3 that fails: 500, 503 and SlowDown from a fault-injecting proxy in front of moto's server.

The workers reach storage only through the proxy; the test itself looks at moto
directly, so what it sees is what was really stored. At 20% of requests failing
the job completes with correct audio (botocore's retries, then the tasks' own).
At 100% it fails within a bounded time with an error that names storage and the
operation, and nothing is published under the job's final key.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import soundfile as sf

from narrator import jobs
from narrator.errors import JobFailed, JobTimeout, StorageError
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import ObjectStore, open_store
from narrator.storage.s3 import S3Store
from tests.fakes.s3_faults import FaultProxy
from tests.pipeline.checks import chunk_starts
from tests.reliability.conftest import Workers
from tests.support.moto import MotoServer
from tests.support.procs import RedisServer

pytestmark = pytest.mark.integration

PARAGRAPHS = [
    "The ferry left the harbour at six, as it had every morning for forty years, whatever the weather said. "
    "Its captain kept a thermos of tea on the dashboard and a radio tuned to the shipping forecast.",
    "Halfway across, the fog came down so thick that the gulls stopped calling and the engine seemed louder. "
    "The passengers went quiet, and somebody at the back began, very softly, to sing.",
    "By the time the far pier showed through the grey, half the boat had joined in the chorus. "
    "Nobody could remember afterwards who had started it, or what the song had been called.",
]
TEXT = "\n\n".join(PARAGRAPHS)
# Every call makes at most 5 attempts (botocore, backoff under 1+2+4+8 s); a step retries at most
# 5 times (backoff under 1+2+4+8+16 s); the failure is recorded with one more call. Plus slack.
FAILURE_BOUND = 6 * 15 + 31 + 15 + 30


def test_the_proxy_forwards_refuses_and_repeats_itself(moto_server: MotoServer, aws_env: None) -> None:
    settings = Settings(storage_url=f"s3://{moto_server.create_bucket()}")
    with FaultProxy(moto_server.endpoint_url, rate=0.0, seed=1) as proxy:
        store = S3Store.from_url(settings.storage_url, settings.with_(s3_endpoint_url=proxy.url), max_attempts=1)
        store.put_bytes("jobs/a", b"through the proxy")
        assert store.get_bytes("jobs/a") == b"through the proxy" and store.size("jobs/a") == 17
        proxy.configure(rate=1.0, kinds=("slowdown",))
        with pytest.raises(StorageError, match=r"^get jobs/a: S3 answered SlowDown \(HTTP 503\)"):
            store.get_bytes("jobs/a")
        assert proxy.stats()["forwarded"] == 3 and proxy.stats()["faults"] == {"slowdown": 1}
    # The same seed makes the same decisions for the same requests.
    runs = []
    for _ in range(2):
        replay = FaultProxy(moto_server.endpoint_url, rate=0.3, seed=99)
        runs.append([replay.decide("GET", f"/b/{i}") for i in range(200)])
        replay.stop()
    assert runs[0] == runs[1] and 30 < sum(d is not None for d in runs[0]) < 90


@dataclass
class FaultyS3:
    proxy: FaultProxy
    workers_settings: Settings
    """What the workers use: storage through the proxy."""
    settings: Settings
    """What the test uses: the same bucket straight from moto."""
    workers: Workers

    @property
    def store(self) -> ObjectStore:
        return open_store(self.settings)


@pytest.fixture
def faulty_s3(
    redis_server: RedisServer, moto_server: MotoServer, aws_env: None, workers: Workers
) -> Iterator[FaultyS3]:
    redis_server.flush()
    bucket = moto_server.create_bucket()
    settings = Settings(
        broker_url=redis_server.url,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=moto_server.endpoint_url,
        workflows_dir=PROJECT_WORKFLOWS,
        default_model="local",
    )
    with FaultProxy(moto_server.endpoint_url, rate=0.0, seed=20240501) as proxy:
        through_proxy = settings.with_(s3_endpoint_url=proxy.url)
        workers.start(through_proxy, concurrency=2)
        yield FaultyS3(proxy, through_proxy, settings, workers)


def test_twenty_percent_of_requests_failing(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.configure(rate=0.2)
    handle = jobs.submit({"text": TEXT, "output": {"format": "wav"}}, faulty_s3.settings)
    try:
        result = handle.wait(timeout=150)
    except (JobFailed, JobTimeout) as exc:
        raise AssertionError(f"{exc}\n{faulty_s3.proxy.stats()}\n{faulty_s3.workers.logs()[-4000:]}") from exc

    stats = faulty_s3.proxy.stats()
    assert stats["faulted"] >= 3 and set(stats["faults"]) == {"500", "503", "slowdown"}, stats
    assert 0.1 < stats["faulted"] / stats["requests"] < 0.35, stats

    store = faulty_s3.store
    assert result.chunks == 3
    samples, rate = sf.read(io.BytesIO(store.get_bytes(result.output_key)), dtype="float32")
    assert rate == result.sample_rate and abs(len(samples) / rate - result.duration_seconds) < 0.05
    starts = chunk_starts(store, handle.id, result.chunks, samples, rate)
    assert starts == sorted(starts) and starts[-1] < len(samples)
    captions = store.get_bytes(f"jobs/{handle.id}/output.vtt").decode()
    assert captions.startswith("WEBVTT") and "ferry" in captions and "chorus" in captions
    print(f"\n20% S3 faults: {stats['requests']} requests, {stats['faults']} refused, job completed")


def test_every_request_failing_fails_the_job_cleanly(faulty_s3: FaultyS3) -> None:
    """Storage dies once the job is staged: the job fails, and nothing half-done is published."""
    proxy, store = faulty_s3.proxy, faulty_s3.store
    # Every request fails from the first read of the manifest on, the step after staging: the job
    # is certainly mid-way (not done already) when storage dies, whatever the machine's speed.
    proxy.fail_from("GET", "/manifest.json")
    started = time.monotonic()
    handle = jobs.submit({"text": TEXT, "output": {"format": "wav"}}, faulty_s3.settings)
    with pytest.raises(JobFailed) as failed:
        handle.wait(timeout=FAILURE_BOUND)
    took = time.monotonic() - started
    assert store.exists(f"jobs/{handle.id}/manifest.json"), "storage died before the job was staged"

    message = str(failed.value)
    assert "S3 answered" in message and f"jobs/{handle.id}/" in message, message
    assert any(f"{op} jobs/{handle.id}/" in message for op in ("get", "put", "head", "list", "copy")), message
    assert took < FAILURE_BOUND
    stats = proxy.stats()
    assert stats["forwarded"] == 0 and stats["faulted"] >= 5, stats
    keys = store.list(f"jobs/{handle.id}/")
    assert not [k for k in keys if k.startswith(f"jobs/{handle.id}/output.")], keys
    assert f"jobs/{handle.id}/result.json" not in keys
    print(f"\n100% S3 faults: job failed after {took:.1f} s, {stats['faulted']} requests refused: {message[:160]}")


