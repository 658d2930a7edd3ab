"""The real RunPod worker loop submitting through a real Redis broker to real Celery worker processes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from narrator.job import jobdata
from narrator.settings import Settings
from narrator.storage import ObjectStore, open_store
from narrator.tasks.pipeline import chunk_id
from tests.fakes.runpod_api import FakeRunPod
from tests.runpod.conftest import LONG_TEXT, HandlerProcess, handler_env, start_handler
from tests.support.procs import RedisServer, WorkerPool, wait_until

pytestmark = pytest.mark.integration

READY_STATES = {"SUCCESS", "FAILURE", "REVOKED"}


@dataclass
class BrokerLoop:
    fake: FakeRunPod
    process: HandlerProcess
    pool: WorkerPool
    store: ObjectStore
    backend: Celery

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
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory, small_workflows: Path
) -> Iterator[BrokerLoop]:
    folder = tmp_path_factory.mktemp("runpod-redis")
    redis_server.flush()
    settings = Settings(
        broker_url=redis_server.url, storage_url=(folder / "store").as_uri(), workflows_dir=small_workflows,
        job_timeout=120,
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
                yield BrokerLoop(fake, process, pool, open_store(settings), backend)
            finally:
                process.stop()
        finally:
            pool.stop_all()
            backend.close()


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
    # A text no earlier test synthesized: no chunk may come from the cache.
    job_id = broker_loop.fake.enqueue({"text": f"Timeout run {uuid.uuid4().hex}. {LONG_TEXT}", "timeout": 1.5})
    body = broker_loop.result(job_id)
    assert set(body) == {"error"} and "did not finish within 1.5 s" in body["error"], body
    taken = broker_loop.fake.wait_for(job_id, "take", 1).at
    assert broker_loop.fake.wait_for(job_id, "done", 1).at - taken < 1.5 + 1.5
    narrator_id = body["error"].split()[1]
    store = broker_loop.store
    assert store.exists(jobdata.cancel_key(narrator_id))
    manifest = jobdata.read_manifest(store, narrator_id)
    results = [broker_loop.backend.AsyncResult(chunk_id(narrator_id, c.index)) for c in manifest.chunks]

    def settled() -> list[str] | None:
        states = [r.state for r in results]
        return states if set(states) <= READY_STATES else None

    states = wait_until(settled, 60, "every chunk task to finish or be revoked")
    assert isinstance(states, list) and "REVOKED" in states, states
    assert not store.exists(jobdata.result_key(narrator_id))
    # A running chunk sees the cancel mark and interrupts ComfyUI: that path is
    # tested with the fake ComfyUI in tests/pipeline/test_cli_workers.py.
