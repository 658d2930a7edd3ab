"""Resume: a job stopped half way, run again with the same request, synthesizes only what is missing."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import redis

from narrator import jobs
from narrator.settings import Settings
from narrator.tasks.names import redis_list_keys
from tests.support.procs import WorkerPool, wait_until

pytestmark = pytest.mark.integration

REQUEST = {
    "text": "\n\n".join(
        f"Chapter part {n}: the long night went on, and the lamp burned low. The wind pulled at the shutters, "
        "the dog turned twice by the fire, and somewhere below the house the river kept up its patient noise."
        for n in "ABCDEFGH"
    ),
    "model": "vibevoice-large",
}


def test_rerun_reuses_finished_chunks(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    first, second = fake_comfy_processes(2, synth_seconds=0.5)
    gpu = worker_pool.start(broker_settings.with_(comfy_url=first.url), queues="narrator.gpu", name="gpu-a")
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")

    handle = jobs.submit(REQUEST, broker_settings)
    wait_until(lambda: handle.progress().chunks_done >= 3, 60, "three chunks to finish")
    first.configure(hold=True)  # the chunk on ComfyUI now stays there: the job cannot end before the kill
    gpu.kill(signal.SIGKILL)  # the job stops half way: no GPU worker left...
    # ...and its remaining chunk tasks are dropped, so only the re-run can finish the work.
    broker = redis.Redis.from_url(broker_settings.broker_url)
    broker.delete(*redis_list_keys("narrator.gpu"), "unacked", "unacked_index")
    done_before = handle.progress().chunks_done
    total = handle.progress().chunks_total
    assert 3 <= done_before < total == 8

    worker_pool.start(broker_settings.with_(comfy_url=second.url), queues="narrator.gpu", name="gpu-b")
    rerun = jobs.submit(REQUEST, broker_settings)
    result = rerun.wait(timeout=120)

    assert result.chunks == total
    assert result.metrics.cache_hits >= done_before
    assert result.metrics.cache_hits + result.metrics.chunks_synthesized == total
    # The new ComfyUI saw only the chunks that were missing.
    assert second.stats()["prompts_posted"] == result.metrics.chunks_synthesized
