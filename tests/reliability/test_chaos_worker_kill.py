"""SIGKILL a GPU worker (its whole process group) in the middle of a chunk, three times in one job."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from narrator import jobs
from narrator.settings import Settings
from narrator.tasks.recovery import name_in_use, orphaned
from tests.reliability.chaos_support import (
    assert_complete_in_order,
    cluster_settings,
    manifest_texts,
    paragraphs,
    posted,
    posted_texts,
    request,
    wait_for,
    wait_mid_chunk,
)
from tests.support.comfy import FakeProcess
from tests.support.procs import RedisServer, Worker, WorkerPool, free_port

pytestmark = pytest.mark.integration

CHUNKS = 40
# The broker redelivers a dead worker's message after its visibility timeout,
# chunk_time_limit * 2 + 60 = 180 s here. The job must finish well before that:
# the restarted worker gives its previous life's chunk back at once.
LIMITS = {"NARRATOR_CHUNK_SOFT_TIME_LIMIT": "50", "NARRATOR_CHUNK_TIME_LIMIT": "60"}
VISIBILITY_TIMEOUT = 180


@pytest.fixture
def broker_settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    return cluster_settings(redis_server, tmp_path)


def test_job_survives_three_gpu_worker_kills(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    victim_fake, steady_fake = fake_comfy_processes(2, synth_seconds=1.0)
    # The victim's ComfyUI holds every prompt: each kill certainly lands in the middle of a chunk.
    victim_fake.configure(hold=True)

    def gpu_worker(fake: FakeProcess, name: str) -> Worker:
        return worker_pool.start(broker_settings.with_(comfy_url=fake.url), "narrator.gpu", 1, LIMITS, name)

    victim = gpu_worker(victim_fake, "gpu-victim")
    gpu_worker(steady_fake, "gpu-steady")
    worker_pool.start(broker_settings, queues="narrator.cpu", concurrency=1, name="cpu", extra_env=LIMITS)

    handle = jobs.submit(request(paragraphs(CHUNKS, "kill")), broker_settings)
    killed: list[str] = []
    seen = 0
    for life in range(3):
        killed.append(wait_mid_chunk(victim_fake, after=seen))
        victim.kill(signal.SIGKILL)
        seen = posted(victim_fake)
        assert handle.progress().chunks_done < CHUNKS, "the job finished before the worker was killed"
        victim.log.rename(victim.log.with_suffix(f".{life}.log"))
        # A restarted container keeps its node name: same name, same settings.
        victim = gpu_worker(victim_fake, "gpu-victim")
        assert "requeued messages a previous run of this worker left" in victim.logs()
    last_kill = time.monotonic()
    victim_fake.configure(hold=False)  # the dead lives' prompts end unheard, then the new life's runs

    result = wait_for(handle, VISIBILITY_TIMEOUT - 60, worker_pool)

    assert time.monotonic() - last_kill < VISIBILITY_TIMEOUT - 60

    assert_complete_in_order(broker_settings, handle, result, CHUNKS)
    texts = posted_texts([victim_fake, steady_fake])
    assert set(texts) == set(manifest_texts(broker_settings, handle.id))
    # Each killed chunk ran again (its first run died with the worker); nothing else ran twice.
    assert all(texts[text] >= 2 for text in killed), [texts[t] for t in killed]
    assert {t for t, count in texts.items() if count > 1} <= set(killed)


def _entry(task_id: str | None) -> bytes:
    headers = {"id": task_id} if task_id else {}
    return json.dumps([{"body": "", "headers": headers, "properties": {}}, "narrator.gpu", "narrator.gpu"]).encode()


META = {
    "t-mine": {"status": "STARTED", "result": {"pid": 7, "hostname": "gpu0@box"}},
    "t-other": {"status": "STARTED", "result": {"pid": 8, "hostname": "gpu1@box"}},
    "t-retry": {"status": "RETRY", "result": {"exc_type": "EngineUnavailable"}},
    "t-done": {"status": "SUCCESS", "result": {"index": 3}},
}


@pytest.mark.parametrize(
    ("task_id", "requeued"),
    [
        ("t-mine", True),  # this node started it and died: orphaned
        ("t-other", False),  # another (live) node is running it
        ("t-retry", False),  # waiting for its countdown on some node
        ("t-done", False),  # finished; only the ack was lost: the visibility timeout will do
        ("t-unknown", False),  # PENDING: not started anywhere yet
        (None, False),  # not a Celery task message
    ],
)
def test_only_what_this_node_started_is_orphaned(task_id: str | None, requeued: bool) -> None:
    entries = {b"tag-1": _entry(task_id), b"tag-2": b"not json"}
    tags = orphaned(entries, lambda tid: META.get(tid, {"status": "PENDING", "result": None}), "gpu0@box")
    assert tags == ([b"tag-1"] if requeued else [])


@pytest.mark.parametrize(
    "broker",
    [
        "sqs://",  # no broadcast: no worker could answer a ping
        f"redis://127.0.0.1:{free_port()}/0",  # nobody listens: the broker cannot say
    ],
)
def test_a_broker_that_cannot_tell_whether_a_name_is_in_use_says_so(broker: str) -> None:
    """None, not False: a worker then leaves recovery to the visibility timeout rather than guess."""
    assert name_in_use(Celery(broker=broker, set_as_current=False), "gpu-0@box") is None
