"""A deploy stops a GPU worker with SIGTERM (``docker stop``): the running chunk is finished, not cut.

Compose gives a worker a grace period longer than the chunk limits (tests/deploy), and this is
what the grace is for: Celery's warm shutdown stops taking tasks at once and waits for the one
running. The chunk is held on the fake ComfyUI until the test lets it end, so the worker is
caught mid-chunk whatever the machine's speed.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from narrator import jobs
from narrator.settings import Settings
from tests.reliability.chaos_support import assert_complete_in_order, job_posts, paragraphs, request, stat, wait_for
from tests.support.procs import WorkerPool, wait_until

pytestmark = pytest.mark.integration


def test_sigterm_mid_chunk_finishes_the_chunk_then_exits(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    (fake,) = fake_comfy_processes(1)
    settings = broker_settings.with_(default_model="vibevoice-large")
    gpu = worker_pool.start(settings.with_(comfy_url=fake.url), queues="narrator.gpu", name="gpu")
    worker_pool.start(settings, queues="narrator.cpu", name="cpu")
    fake.configure(hold=True)
    handle = jobs.submit(request(paragraphs(3, "shutdown")), settings)
    wait_until(lambda: stat(fake, "prompts_posted") >= 1, 60, "the first chunk on ComfyUI")

    gpu.proc.send_signal(signal.SIGTERM)  # the main process, as docker stop signals it
    wait_until(lambda: "shutting down" in gpu.logs(), 30, "the worker to begin its warm shutdown")
    assert gpu.proc.poll() is None, "the worker exited with its chunk still running"
    fake.configure(hold=False)
    gpu.proc.wait(60)

    assert gpu.proc.returncode == 0, gpu.logs()[-3000:]
    assert stat(fake, "prompts_posted") == 1, "the stopping worker took another chunk"
    assert len(handle.job_store.done()) == 1, "the running chunk was not finished and stored"
    # The next worker (the upgraded one) does the rest; nothing is synthesized twice.
    worker_pool.start(settings.with_(comfy_url=fake.url), queues="narrator.gpu", name="gpu-next")
    result = wait_for(handle, 120, worker_pool)
    assert_complete_in_order(settings, handle, result, 3)
    assert all(count == 1 for count in job_posts([fake], settings, handle.id).values())
