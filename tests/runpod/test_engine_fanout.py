"""The ``runpod`` engine end to end: a Celery worker (one process, threads) sends each chunk to a
fake RunPod endpoint whose workers run the real handler's chunk mode on the embedded voice.

Real parts: Redis, a ``narrator worker --pool threads`` process, the shared file bucket, RunPod's
REST protocol over loopback (tests/fakes/runpod_rest.py), the handler, Piper. Bad endpoints and
keys end the job with one line and leave nothing running on the fake RunPod.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import soundfile as sf

from narrator import jobs, runpod_handler
from narrator.errors import JobCancelled, JobFailed
from narrator.result import JobState
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import open_store
from tests.fakes.runpod_api import ENDPOINT
from tests.fakes.runpod_rest import API_KEY, FakeServerless, Report
from tests.runpod.conftest import LONG_TEXT, SMALL_CHUNKS
from tests.support.procs import RedisServer, Worker, WorkerPool, wait_until

pytestmark = pytest.mark.integration

RUNPOD_MODEL = """
name = "{name}"
engine = "runpod"
description = "the embedded voice, one chunk per RunPod request (a test model)"
sample_rate = 22050
voice_cloning = false
words_per_minute = 211
max_chunk_chars = {chunk}
min_chunk_chars = 40
parameters = ["speed", "temperature"]

[runpod]
endpoint = "{endpoint}"
model = "{model}"
queue_timeout = {queue_timeout}

[defaults]
speed = 1.0
temperature = 1.0
"""
MODELS = {  # name: (endpoint, the model it asks the endpoint for, queue timeout)
    "local-runpod": (ENDPOINT, "local", 60),
    "other-model-runpod": (ENDPOINT, "vibevoice-large", 60),
    "no-endpoint-runpod": ("no-such-endpoint", "local", 60),
    "never-started-runpod": (ENDPOINT, "local", 1),
}


@dataclass
class Endpoint:
    """The fake endpoint's workers: the real handler, held at ``gate`` while a test wants them held."""

    fake: FakeServerless
    gate: threading.Event
    fail_first: set[int]
    """Chunk indices whose first run crashes the fake worker (FAILED), as a lost GPU would."""

    def work(self, job: dict[str, Any], report: Report) -> Any:
        index = job["input"]["chunk"]["index"]
        if index in self.fail_first:
            self.fail_first.discard(index)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if not report.hold(self.gate):
            return {"error": "stopped by RunPod"}
        return runpod_handler.handler(job)


@dataclass
class Setup:
    settings: Settings
    endpoint: Endpoint
    worker: Worker


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
          small_workflows: Path) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("fanout")
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "local.toml").write_text((small_workflows / "local.toml").read_text())
    for name, (endpoint, model, queue_timeout) in MODELS.items():
        (workflows / f"{name}.toml").write_text(RUNPOD_MODEL.format(
            name=name, endpoint=endpoint, model=model, queue_timeout=queue_timeout, chunk=SMALL_CHUNKS))
    store = (root / "bucket").as_uri()
    # The endpoint's side: the same bucket, its own model files (the shipped ones: local, VibeVoice).
    runpod_handler.configure(Settings(storage_url=store, workflows_dir=small_workflows, verify="off"),
                             post_updates=False)
    gate = threading.Event()
    gate.set()
    endpoint = Endpoint(None, gate, set())  # type: ignore[arg-type]
    with FakeServerless(workers=3, cold_start=0.2, work=endpoint.work) as fake:
        endpoint.fake = fake
        redis_server.flush()
        settings = Settings(broker_url=redis_server.url, storage_url=store, workflows_dir=workflows, verify="off",
                            runpod_api_key=API_KEY, runpod_api_url=fake.api_url, chunk_max_retries=2)
        pool = WorkerPool(root)
        worker = pool.start_command(settings, "fanout", "--queues", "all", "--pool", "threads", "--concurrency", "8")
        try:
            yield Setup(settings, endpoint, worker)
        finally:
            pool.stop_all()


@pytest.fixture(autouse=True)
def nothing_left_running(setup: Setup) -> Iterator[None]:
    setup.endpoint.gate.set()
    yield
    setup.endpoint.gate.set()
    fake = setup.endpoint.fake
    wait_until(lambda: not fake.running(), 30, f"no RunPod job left running (left: {fake.running()})")


def request(model: str, temperature: float, text: str = LONG_TEXT) -> dict[str, Any]:
    """A temperature of each test's own: no chunk comes from another test's cache."""
    return {"text": text, "model": model, "voice_settings": {"temperature": temperature}}


def remote_jobs(setup: Setup, job_id: str) -> list[Any]:
    return [j for j in setup.endpoint.fake.jobs.values() if j.input["chunk"]["job_id"] == job_id]


def test_a_job_fans_its_chunks_out_and_joins_them(setup: Setup) -> None:
    handle = jobs.submit(request("local-runpod", 0.9), setup.settings)
    result = handle.wait(timeout=120)

    sent = remote_jobs(setup, handle.id)
    assert sorted(j.input["chunk"]["index"] for j in sent) == list(range(result.chunks))
    assert result.chunks >= 4 and all(j.status == "COMPLETED" for j in sent)
    assert {j.input["chunk"]["model"] for j in sent} == {"local"}
    # In flight together, on several serverless workers, from one worker process with no children.
    spans = sorted((j.started, j.finished) for j in sent)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    assert psutil.Process(setup.worker.proc.pid).children(recursive=True) == []
    # Real speech, joined in order; the endpoint's chunk files were read and removed.
    samples, rate = sf.read(io.BytesIO(handle.audio_bytes()))
    assert rate == 22050 and abs(len(samples) / rate - result.duration_seconds) < 0.05
    assert result.duration_seconds > 5
    assert open_store(setup.settings).list(f"jobs/{handle.id}/runpod/") == []
    # The same request again: every chunk from the cache, nothing sent to RunPod.
    before = len(setup.endpoint.fake.jobs)
    again = jobs.submit(request("local-runpod", 0.9), setup.settings).wait(timeout=120)
    assert again.metrics.cache_hits == result.chunks and len(setup.endpoint.fake.jobs) == before


def test_a_worker_crash_and_rate_limits_are_retried(setup: Setup) -> None:
    setup.endpoint.fail_first.update({0, 1})
    setup.endpoint.fake.fail_next(2, 429, retry_after="0", route="run")
    handle = jobs.submit(request("local-runpod", 0.8), setup.settings)
    result = handle.wait(timeout=120)
    sent = remote_jobs(setup, handle.id)
    assert [j.status for j in sent].count("FAILED") == 2
    assert sorted(j.input["chunk"]["index"] for j in sent if j.status == "COMPLETED") == list(range(result.chunks))


def test_a_cancelled_job_cancels_its_chunks_on_runpod(setup: Setup) -> None:
    fake = setup.endpoint.fake
    setup.endpoint.gate.clear()  # the endpoint's workers hold their chunks
    handle = jobs.submit(request("local-runpod", 0.7), setup.settings)
    wait_until(lambda: len([j for j in remote_jobs(setup, handle.id) if j.status == "IN_PROGRESS"]) == 3, 60,
               "three chunks running on the endpoint's three workers")
    handle.cancel()
    with pytest.raises(JobCancelled):
        handle.wait(timeout=60)
    wait_until(lambda: not fake.running(), 30, "every chunk ended on RunPod")
    sent = remote_jobs(setup, handle.id)
    assert {j.status for j in sent} == {"CANCELLED"}, [j.history for j in sent]
    assert {j.id for j in sent} <= set(fake.cancels)
    assert handle.job_store.state() is JobState.CANCELLED


@pytest.mark.parametrize(("model", "said"), [
    ("other-model-runpod", "this endpoint does not run model 'vibevoice-large' (it runs: local)"),
    ("no-endpoint-runpod", "no-such-endpoint"),
    ("never-started-runpod", f"RunPod endpoint {ENDPOINT} did not start chunk"),
])
def test_a_wrong_endpoint_fails_the_job_in_one_line(setup: Setup, model: str, said: str) -> None:
    fake = setup.endpoint.fake
    if model == "never-started-runpod":
        fake.queue_delay = 3600.0  # no worker ever takes it
    try:
        handle = jobs.submit(request(model, 0.6, "One short sentence to speak."), setup.settings)
        with pytest.raises(JobFailed) as failed:
            handle.wait(timeout=60)
    finally:
        fake.queue_delay = 0.0
    message = str(failed.value)
    assert said in message and "\n" not in message, message
    assert API_KEY not in message
    assert not fake.running()


def test_a_refused_key_fails_the_job_naming_the_variable(setup: Setup) -> None:
    fake = setup.endpoint.fake
    fake.api_key = "another-key"
    try:
        handle = jobs.submit(request("local-runpod", 0.5, "One short sentence to speak."), setup.settings)
        with pytest.raises(JobFailed) as failed:
            handle.wait(timeout=60)
    finally:
        fake.api_key = API_KEY
    assert "NARRATOR_RUNPOD_API_KEY" in str(failed.value) and API_KEY not in str(failed.value)
    assert remote_jobs(setup, handle.id) == []


def test_the_shipped_workflows_hold_no_runpod_model() -> None:
    # An endpoint id is the deployment's: the example lives in docs, not in the default folder.
    assert "runpod" not in {t.read_text().split('engine = "')[1].split('"')[0]
                            for t in PROJECT_WORKFLOWS.glob("*.toml")}
