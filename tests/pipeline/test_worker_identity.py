"""Worker identity: two GPU workers on one host get distinct, stable default names, a restart after SIGKILL
requeues only what its own previous life held, and a worker refuses a name a live worker answers to.

Real ``narrator worker`` processes on the real Redis, each GPU worker on a fake ComfyUI of its own whose
``hold`` decides when a chunk ends.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from narrator import jobs
from narrator.settings import Settings
from tests.reliability.chaos_support import (
    MODEL,
    assert_complete_in_order,
    manifest_texts,
    paragraphs,
    posted_texts,
    request,
    wait_for,
    wait_mid_chunk,
)
from tests.support.comfy import FakeProcess
from tests.support.procs import Worker, WorkerPool, node_name_of, wait_until

pytestmark = pytest.mark.integration

CHUNKS = 8
HOST = socket.gethostname()
RESTORED = "requeued messages a previous run of this worker left"


@pytest.fixture
def slots(tmp_path: Path) -> dict[str, str]:
    """The workers' environment: slot locks in this test's own runtime folder, shared as on one host."""
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(folder)}


def test_a_restart_after_sigkill_requeues_only_its_own_chunk(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any, slots: dict[str, str]
) -> None:
    settings = broker_settings.with_(default_model=MODEL)
    victim_fake, other_fake = fake_comfy_processes(2)
    for fake in (victim_fake, other_fake):  # every chunk runs until the test lets it end
        fake.configure(hold=True)

    def gpu_worker(fake: FakeProcess, label: str) -> Worker:
        return worker_pool.start_command(settings.with_(comfy_url=fake.url), label, "--queues", "gpu",
                                         extra_env=slots)

    victim = gpu_worker(victim_fake, "victim")
    other = gpu_worker(other_fake, "other")
    assert (node_name_of(victim), node_name_of(other)) == (f"gpu-0@{HOST}", f"gpu-1@{HOST}")
    worker_pool.start(settings, queues="narrator.cpu", name="cpu")

    handle = jobs.submit(request(paragraphs(CHUNKS, "identity")), settings)
    victims_chunk = wait_mid_chunk(victim_fake, after=0)
    others_chunk = wait_mid_chunk(other_fake, after=0)
    victim.kill(signal.SIGKILL)
    victim.log.rename(victim.log.with_suffix(".first-life.log"))

    victim = gpu_worker(victim_fake, "victim")  # as a process supervisor would restart it: same command
    assert node_name_of(victim) == f"gpu-0@{HOST}", victim.logs()
    assert RESTORED in victim.logs(), victim.logs()
    victim_fake.configure(hold=False)  # the dead life's prompt ends unheard, then the restart's run

    # The restarted worker runs every chunk but the one the other worker still holds.
    wait_until(lambda: handle.progress().chunks_done == CHUNKS - 1, 120,
               f"every chunk but the held one:\n{worker_pool.logs()}")
    posted = posted_texts([victim_fake, other_fake])
    assert posted[others_chunk] == 1, "the live worker's running chunk was requeued and run again"
    other_fake.configure(hold=False)

    result = wait_for(handle, 120, worker_pool)
    assert_complete_in_order(settings, handle, result, CHUNKS)
    posted = posted_texts([victim_fake, other_fake])
    assert set(posted) == set(manifest_texts(settings, handle.id))
    # The killed chunk's first prompt died with its worker; every other chunk reached ComfyUI once.
    assert posted[victims_chunk] == 2
    assert {text: n for text, n in posted.items() if text != victims_chunk and n != 1} == {}
    assert (result.metrics.chunks_synthesized, result.metrics.cache_hits) == (CHUNKS, 0)


def test_a_name_a_live_worker_answers_to_is_refused(
    broker_settings: Settings, worker_pool: WorkerPool, slots: dict[str, str]
) -> None:
    live = worker_pool.start_command(broker_settings, "live", "--queues", "cpu", "--name", "narrator-a",
                                     extra_env=slots)
    assert node_name_of(live) == f"narrator-a@{HOST}"  # NAME without '@' is NAME@<host>

    twin = worker_pool.start_command(broker_settings, "twin", "--queues", "cpu", extra_env={
        **slots, "NARRATOR_WORKER_NAME": f"narrator-a@{HOST}"}, wait=False)
    assert twin.proc.wait(60) != 0, twin.logs()
    refusals = [line for line in twin.logs().splitlines() if "CRITICAL" in line]
    assert len(refusals) == 1, twin.logs()
    assert f"narrator-a@{HOST}" in refusals[0] and "--name" in refusals[0]
    assert " ready." not in twin.logs() and RESTORED not in twin.logs()
    assert "Traceback" not in twin.logs()
    assert live.proc.poll() is None  # the live worker goes on


def test_a_bad_name_exits_2_naming_the_field(broker_settings: Settings, worker_pool: WorkerPool) -> None:
    worker = worker_pool.start_command(broker_settings, "bad", "--queues", "cpu", "--name", "gpu 0", wait=False)
    assert worker.proc.wait(60) == 2
    assert "--name: 'gpu 0' is not a worker name" in worker.logs()
