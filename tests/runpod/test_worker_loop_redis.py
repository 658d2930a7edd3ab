"""The real RunPod worker loop submitting through a real Redis broker to real Celery worker processes.

One worker with one slot serves both queues; ``vibevoice-large`` runs on a fake ComfyUI, which a test
can tell to hold its prompts until they are interrupted: then the job's first chunk occupies the slot
and the others wait in the queue for as long as the test needs.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from narrator.job.store import JobStore
from narrator.settings import Settings
from narrator.storage import ObjectStore, open_store
from narrator.tasks.pipeline import chunk_id
from tests.fakes.runpod_api import FakeRunPod
from tests.runpod.conftest import LONG_TEXT, HandlerProcess, handler_env, start_handler
from tests.support.comfy import FakeProcess, start_fake_process, stop_fakes
from tests.support.procs import RedisServer, WorkerPool, free_port, wait_until

pytestmark = pytest.mark.integration

READY_STATES = {"SUCCESS", "FAILURE", "REVOKED"}
#: Long enough for the job to be staged (its chunks queued) first, on a loaded machine; the test lasts this long.
TIMEOUT = 5.0


@dataclass
class BrokerLoop:
    fake: FakeRunPod
    process: HandlerProcess
    pool: WorkerPool
    store: ObjectStore
    backend: Celery
    comfy: FakeProcess

    def result(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        try:
            body = self.fake.result(job_id, timeout)
        except AssertionError as exc:
            logs = f"--- handler ---\n{self.process.logs()[-4000:]}\n{self.pool.logs()}"
            raise AssertionError(f"{exc}\n{logs}") from None
        assert isinstance(body, dict)
        return body


@pytest.fixture(scope="module")
def broker_loop(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory, comfy_workflows: Path
) -> Iterator[BrokerLoop]:
    folder = tmp_path_factory.mktemp("runpod-redis")
    redis_server.flush()
    comfy = start_fake_process(free_port(), folder / "comfyui")
    settings = Settings(
        broker_url=redis_server.url, storage_url=(folder / "store").as_uri(), workflows_dir=comfy_workflows,
        comfy_url=comfy.url, job_timeout=120,
    )
    pool = WorkerPool(folder)
    backend = Celery("probe", broker=redis_server.url, backend=redis_server.url)
    with FakeRunPod() as fake:
        try:
            pool.start(settings, queues="narrator.cpu,narrator.gpu", concurrency=1,
                       extra_env={"NARRATOR_WARMUP_MODELS": "local"})
            process = start_handler(handler_env(settings, fake.env()), folder / "handler.log")
            try:
                process.wait_ready()
                yield BrokerLoop(fake, process, pool, open_store(settings), backend, comfy)
            finally:
                process.stop()
        finally:
            pool.stop_all()
            backend.close()
            stop_fakes([comfy])


def test_job_through_the_broker_posts_progress_then_the_result(broker_loop: BrokerLoop) -> None:
    text = LONG_TEXT[:330]
    job_id = broker_loop.fake.enqueue({"text": text, "output": {"format": "flac"}})
    out = broker_loop.result(job_id)["output"]
    assert out["success"] is True and out["format"] == "flac" and out["chunks"] >= 2
    assert out["text_length"] == len(text)
    assert base64.b64decode(out["audio_b64"]) == broker_loop.store.get_bytes(out["output_key"])
    events = broker_loop.fake.events(job_id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "take" and kinds[-1] == "done" and kinds.count("done") == 1
    done = [e.body["output"]["chunks_done"] for e in events if e.kind == "progress"]
    assert done and done == sorted(done) and done[-1] == out["chunks"]


def test_timeout_revokes_the_jobs_tasks(broker_loop: BrokerLoop) -> None:
    # Three paragraphs, three chunks. ComfyUI holds the first (in the worker's one slot) until the
    # cancel interrupts it: the other two are certainly still queued at the time-out, and are revoked.
    text = "\n\n".join([f"Timeout run {uuid.uuid4().hex}. {LONG_TEXT}", LONG_TEXT, LONG_TEXT])
    broker_loop.comfy.configure(hold=True)
    try:
        job_id = broker_loop.fake.enqueue({"text": text, "model": "vibevoice-large", "timeout": TIMEOUT})
        body = broker_loop.result(job_id)
        assert set(body) == {"error"} and f"did not finish within {TIMEOUT:g} s" in body["error"], body
        taken = broker_loop.fake.wait_for(job_id, "take", 1).at
        # At the time-out, not at the job's end (it has none while held); generous for a loaded machine.
        assert broker_loop.fake.wait_for(job_id, "done", 1).at - taken < TIMEOUT + 10
        narrator_id = body["error"].split()[1]
        job = JobStore(broker_loop.store, narrator_id)
        assert job.cancelled()
        manifest = job.manifest()
        assert len(manifest.chunks) == 3
        results = [broker_loop.backend.AsyncResult(chunk_id(narrator_id, c.index)) for c in manifest.chunks]

        def settled() -> list[str] | None:
            states = [r.state for r in results]
            return states if set(states) <= READY_STATES else None

        states = wait_until(settled, 60, f"every chunk task to finish or be revoked (staged within {TIMEOUT:g} s?)")
        assert isinstance(states, list) and "REVOKED" in states and "SUCCESS" not in states, states
        assert job.result() is None
    finally:
        broker_loop.comfy.configure(hold=False)
    # A running chunk sees the cancel mark and interrupts ComfyUI: that path is
    # tested with the fake ComfyUI in tests/pipeline/test_cli_workers.py.
