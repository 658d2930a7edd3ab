"""Queue order on the Redis broker: jobs first come, first served; a retried chunk next in line.

Each task is sent at NORMAL_PRIORITY and a retry at RETRY_PRIORITY (narrator/tasks/names.py);
kombu keeps one Redis list per step and serves the urgent one first.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from narrator import jobs
from narrator.settings import Settings
from narrator.tasks import configure
from narrator.tasks.names import CHUNK_TASK, GPU_QUEUE, NORMAL_PRIORITY, RETRY_PRIORITY, redis_list_keys
from tests.reliability.chaos_support import (
    assert_complete_in_order,
    cluster,
    cluster_settings,
    manifest_texts,
    paragraphs,
    prompt_texts,
    request,
    restarted,
    stat,
    wait_for,
)
from tests.reliability.conftest import queue_length, redis_dump
from tests.support.procs import RedisServer, wait_until

pytestmark = pytest.mark.integration

#: A floor on each chunk's time at the fake: ten chunks take at least a second, the longest
#: countdown a first retry gets (tasks/retry.py: 0.5 to 1 s).
SYNTH_SECONDS = 0.1
BACKLOG = 30


def queued(settings: Settings, queue: str) -> int:
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return queue_length(client, queue)
    finally:
        client.close()


def test_a_job_waits_at_normal_priority_and_a_retry_in_the_list_served_first(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = cluster_settings(redis_server, tmp_path)
    client = redis.Redis.from_url(settings.broker_url)
    urgent, normal = redis_list_keys("narrator.cpu")  # the order kombu polls them in
    jobs.submit(request(paragraphs(1, "waiting")), settings)  # no worker: it stays queued
    assert (client.llen(urgent), client.llen(normal)) == (0, 1)
    configure(settings).send_task(CHUNK_TASK, args=["0" * 32, 0], queue="narrator.cpu", priority=RETRY_PRIORITY)
    assert (client.llen(urgent), client.llen(normal)) == (1, 1)
    assert RETRY_PRIORITY < NORMAL_PRIORITY, "on Redis the lower step is served first"


def test_request_text_stays_out_of_the_broker(redis_server: RedisServer, tmp_path: Path) -> None:
    settings = cluster_settings(redis_server, tmp_path)
    text = paragraphs(2, "confidential-words-7f3a")
    handle = jobs.submit(request(text), settings)  # no worker: the job waits in the queue

    client = redis.Redis.from_url(settings.broker_url)
    messages = [json.loads(m) for key in redis_list_keys("narrator.cpu") for m in client.lrange(key, 0, -1)]
    assert len(messages) == 1
    body = base64.b64decode(messages[0]["body"]).decode()  # kombu keeps the body base64-encoded
    assert "request_ref" in body and "confidential-words-7f3a" not in body
    assert "confidential-words-7f3a" not in redis_dump(settings.broker_url)
    assert handle.job_store.read_request()["text"] == text


def test_a_retried_chunk_runs_before_the_backlog_and_jobs_keep_their_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = cluster_settings(redis_server, tmp_path)
    with cluster(settings, tmp_path, gpu=1, cpu=1, synth_seconds=SYNTH_SECONDS) as chaos:
        fake = chaos.fakes[0]
        fake.configure(hold=True)  # the first chunk stays on ComfyUI until the restart loses it
        first = jobs.submit(request(paragraphs(4, "first")), settings)
        wait_until(lambda: stat(fake, "prompts_posted") >= 1, 60, "the first job's first chunk on ComfyUI")
        later = jobs.submit(request(paragraphs(BACKLOG, "later")), settings)
        wait_until(lambda: queued(settings, GPU_QUEUE) == 3 + BACKLOG, 60, "both jobs' chunks in the queue")

        httpx.post(f"{fake.url}/_fake/restart", json={"down_seconds": 0.5}, timeout=5).raise_for_status()
        wait_until(lambda: restarted(fake), 30, "the fake ComfyUI to restart")
        fake.configure(hold=False)

        assert_complete_in_order(settings, first, wait_for(first, 120, chaos.pool), 4)
        assert_complete_in_order(settings, later, wait_for(later, 120, chaos.pool), BACKLOG)
        order = prompt_texts(fake.stats()["prompts"])  # type: ignore[arg-type]  # JSON: a list of prompts

    first_texts, later_texts = manifest_texts(settings, first.id), manifest_texts(settings, later.id)
    lost = first_texts[0]
    assert order[0] == lost and order.count(lost) == 2, "the restart did not lose the first chunk's prompt"
    assert sorted(order) == sorted([*first_texts, lost, *later_texts]), "a chunk ran twice, or never"
    # First come, first served: the first job's chunks before any of the later job's.
    firsts = [order.index(text) for text in first_texts[1:]]
    assert max(firsts) < min(order.index(text) for text in later_texts), order
    # The retry waited out its countdown (at most 1 s, ten chunks here) and went next, ahead of the
    # backlog; sent to the back of the queue, it would have run after all thirty.
    retry_at = len(order) - 1 - order[::-1].index(lost)
    assert retry_at <= 1 + 3 + 12, f"the retry ran {retry_at}th of {len(order)}"


def test_jobs_submitted_together_run_one_after_another(redis_server: RedisServer, tmp_path: Path) -> None:
    """Two CPU processes fan out two jobs at once; their chunks still queue job by job, in submission order."""
    settings = cluster_settings(redis_server, tmp_path)
    with cluster(settings, tmp_path, gpu=1, cpu=1, cpu_concurrency=2) as chaos:
        # Both CPU processes warm (their first staging loads what a cold process must), so the
        # four stage together: a staging slower than the grace would rightly let later jobs go first.
        warm = [jobs.submit(request(paragraphs(1, f"warm{j}")), settings) for j in range(2)]
        for handle in warm:
            wait_for(handle, 120, chaos.pool)
        handles = [jobs.submit(request(paragraphs(4, f"together{j}")), settings) for j in range(4)]
        for handle in handles:
            wait_for(handle, 120, chaos.pool)
        order = prompt_texts(chaos.fakes[0].stats()["prompts"])  # type: ignore[arg-type]  # JSON: a list of prompts

    job_of = {text: j for j, handle in enumerate(handles) for text in manifest_texts(settings, handle.id)}
    ran = [job_of[text] for text in order if text in job_of]
    assert ran == sorted(ran) and len(ran) == 16, f"chunks ran in this order of jobs: {ran}"


def test_a_chunk_whose_pool_process_died_runs_next(redis_server: RedisServer, tmp_path: Path) -> None:
    """The OOM killer takes a pool process mid-chunk: Celery requeues the chunk, at the head of its list."""
    settings = cluster_settings(redis_server, tmp_path)
    with cluster(settings, tmp_path, gpu=1, cpu=1) as chaos:
        fake, gpu = chaos.fakes[0], chaos.pool.workers[0]
        fake.configure(hold=True)
        first = jobs.submit(request(paragraphs(2, "killed")), settings)
        wait_until(lambda: stat(fake, "prompts_posted") >= 1, 60, "the first chunk on ComfyUI")
        later = jobs.submit(request(paragraphs(6, "queued")), settings)
        wait_until(lambda: queued(settings, GPU_QUEUE) == 1 + 6, 60, "both jobs' chunks in the queue")

        (child,) = psutil.Process(gpu.proc.pid).children()
        child.kill()  # SIGKILL the pool process alone; the worker's main process stays
        wait_until(lambda: stat(fake, "prompts_posted") >= 2, 60, "the lost chunk posted again")
        fake.configure(hold=False)
        assert_complete_in_order(settings, first, wait_for(first, 120, chaos.pool), 2)
        assert_complete_in_order(settings, later, wait_for(later, 120, chaos.pool), 6)
        order = prompt_texts(fake.stats()["prompts"])  # type: ignore[arg-type]  # JSON: a list of prompts

    lost = manifest_texts(settings, first.id)[0]
    assert order[:2] == [lost, lost], f"the requeued chunk was not next: {order.index(lost, 1)}th"
