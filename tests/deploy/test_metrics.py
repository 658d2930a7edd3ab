"""A real worker's Prometheus endpoint after a real job through Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from narrator import jobs
from narrator.settings import Settings
from tests.support.procs import WorkerPool, free_port, wait_until

pytestmark = pytest.mark.integration

TEXT = (
    "The lamp at the end of the pier burned all night. Nobody remembered who had lit it first.\n\n"
    "In the morning the fishermen found the harbour calm, and the boats came home one by one."
)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample on a worker's /metrics, keyed by name and sorted labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def metrics_env(port: int) -> dict[str, str]:
    return {"NARRATOR_METRICS_PORT": str(port), "NARRATOR_METRICS_ADDR": "127.0.0.1"}


def test_worker_metrics_after_a_job(broker_settings: Settings, worker_pool: WorkerPool) -> None:
    cpu_port, gpu_port = free_port(), free_port()
    worker_pool.start(broker_settings, queues="narrator.cpu", concurrency=2, extra_env=metrics_env(cpu_port))
    handle = jobs.submit({"text": TEXT, "output": {"format": "wav"}}, broker_settings)

    # No GPU worker yet: the chunks wait in narrator.gpu, and the broker says how many.
    staged = cast(int, wait_until(lambda: handle.progress().chunks_total, 30, "the job to be staged"))
    waiting = samples_when(
        lambda: _when(scrape(cpu_port), "narrator_queue_depth", float(staged), queue="narrator.gpu"),
        20, "the CPU worker to report the chunks waiting in narrator.gpu",
    )
    assert value(waiting, "narrator_queue_depth", queue="narrator.gpu") == staged

    worker_pool.start(broker_settings, queues="narrator.gpu", concurrency=1, extra_env=metrics_env(gpu_port))
    result = handle.wait(timeout=120)
    n = result.chunks
    assert n == staged >= 2

    # The GPU worker ran every chunk, in its pool's child, and its main process serves them.
    gpu = samples_when(lambda: _when(scrape(gpu_port), "narrator_chunks_succeeded_total", n, cached="false"),
                     20, "chunk metrics on the GPU worker")
    assert value(gpu, "narrator_chunks_started_total") == n
    assert value(gpu, "narrator_chunk_synthesis_seconds_count") == n
    assert value(gpu, "narrator_chunk_synthesis_seconds_sum") > 0
    assert value(gpu, "narrator_chunks_failed_total") == 0
    chunk_audio = value(gpu, "narrator_chunk_audio_seconds_total", cached="false")
    assert abs(chunk_audio - result.duration_seconds) < result.duration_seconds * 0.5
    assert value(gpu, "narrator_jobs_started_total") == 0

    # The CPU worker staged, joined and uploaded: the job-level numbers are there.
    cpu = samples_when(lambda: _when(scrape(cpu_port), "narrator_jobs_succeeded_total", 1), 20, "job metrics")
    assert value(cpu, "narrator_jobs_started_total") == 1
    assert value(cpu, "narrator_job_seconds_count") == 1
    assert 0 < value(cpu, "narrator_job_seconds_sum") < 120
    assert value(cpu, "narrator_audio_seconds_total") == pytest.approx(result.duration_seconds, rel=1e-3)
    assert value(cpu, "narrator_task_runs_total", task="narrator.upload", state="SUCCESS") == 1
    assert value(cpu, "narrator_task_runs_total", task="narrator.stage_input", state="SUCCESS") == 1
    assert value(cpu, "narrator_task_seconds_count", task="narrator.concatenate") == 1

    # The job is done: nothing waits (the depth is asked of the broker at most every 5 s).
    cpu = samples_when(lambda: _when_zero(scrape(cpu_port), "narrator.gpu"), 20, "narrator.gpu to drain")
    for samples in (cpu, gpu):
        assert value(samples, "narrator_queue_depth", queue="narrator.cpu") == 0
        assert value(samples, "narrator_queue_depth", queue="narrator.gpu") == 0
        assert ("narrator_queue_depth", (("queue", "narrator.gpu"),)) in samples


def samples_when(predicate: Callable[[], Samples | None], timeout: float, what: str) -> Samples:
    return cast(Samples, wait_until(predicate, timeout, what))


def _when(samples: Samples, name: str, expected: float, **labels: str) -> Samples | None:
    return samples if value(samples, name, **labels) >= expected else None


def _when_zero(samples: Samples, queue: str) -> Samples | None:
    key = ("narrator_queue_depth", (("queue", queue),))
    return samples if key in samples and samples[key] == 0 else None
