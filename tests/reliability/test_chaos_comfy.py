"""ComfyUI misbehaves under running jobs: it hangs, restarts, goes quiet on the websocket, or
fails one chunk every time. Real Celery workers, each on its own fake ComfyUI process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from narrator import jobs
from narrator.errors import JobFailed
from narrator.tasks import configure
from narrator.tasks.pipeline import chunk_id
from tests.reliability.chaos_support import (
    Cluster,
    assert_complete_in_order,
    cluster,
    cluster_settings,
    job_posts,
    manifest_texts,
    paragraphs,
    posted,
    request,
    restarted,
    stat,
    wait_for,
    wait_mid_chunk,
)
from tests.support.procs import RedisServer, wait_until

pytestmark = pytest.mark.integration

COMFY_TIMEOUT = 4
MAX_RETRIES = 3
CALM = {"hang": False, "hold": False, "ws_silent": False, "ws_drop": 0, "fail_node": None, "fail_marker": None,
        "synth_seconds": 1.0}


@pytest.fixture(scope="module")
def comfy_cluster(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("comfy-chaos")
    settings = cluster_settings(redis_server, folder).with_(chunk_max_retries=MAX_RETRIES)
    # A short ComfyUI deadline, so a hung server costs a chunk seconds, not ten minutes.
    env = {"NARRATOR_COMFY_TIMEOUT": str(COMFY_TIMEOUT)}
    with cluster(settings, folder, gpu=2, cpu=1, cpu_concurrency=2, synth_seconds=1.0, env=env) as running:
        yield running


@pytest.fixture
def chaos(comfy_cluster: Cluster) -> Iterator[Cluster]:
    for fake in comfy_cluster.fakes:
        fake.configure(**CALM)
    yield comfy_cluster
    for fake in comfy_cluster.fakes:
        fake.configure(**CALM)


def retrying_chunk(chaos: Cluster, job_id: str, n: int) -> int | None:
    app = configure(chaos.settings)
    for index in range(n):
        if app.AsyncResult(chunk_id(job_id, index)).state == "RETRY":
            return index
    return None


def test_hung_comfyui_chunk_is_retried(chaos: Cluster) -> None:
    fake = chaos.fakes[0]
    before = posted(fake)
    handle = jobs.submit(request(paragraphs(8, "hang")), chaos.settings)
    wait_mid_chunk(fake, after=before)
    fake.configure(hang=True)
    # The worker gives up on the silent server at its deadline and schedules a retry.
    index = wait_until(lambda: retrying_chunk(chaos, handle.id, 8), 3 * COMFY_TIMEOUT + 10, "a chunk to be retried")
    fake.configure(hang=False)

    result = wait_for(handle, 60, chaos.pool)

    # (The retried chunk may have been posted once: a POST that hung never reached the handler.)
    assert isinstance(index, int)
    assert configure(chaos.settings).AsyncResult(chunk_id(handle.id, index)).state == "SUCCESS"
    assert_complete_in_order(chaos.settings, handle, result, 8)


def test_restarted_comfyui_loses_the_prompt_and_the_chunk_runs_again(chaos: Cluster) -> None:
    fake = chaos.fakes[0]
    before = posted(fake)
    fake.configure(hold=True)  # its first chunk of the job is still running when the restart comes
    handle = jobs.submit(request(paragraphs(8, "restart")), chaos.settings)
    lost = wait_mid_chunk(fake, after=before)
    # Connections refused for a second, then back with no history and an empty queue.
    httpx.post(f"{fake.url}/_fake/restart", json={"down_seconds": 1.0}, timeout=5).raise_for_status()
    wait_until(lambda: restarted(fake), 30, "the fake ComfyUI to come back")
    fake.configure(hold=False)  # the chunk posted again (maybe already, and held) runs to the end

    result = wait_for(handle, 60, chaos.pool)

    assert stat(fake, "restarts") == 1
    assert_complete_in_order(chaos.settings, handle, result, 8)
    texts = job_posts(chaos.fakes, chaos.settings, handle.id)
    assert texts[lost] == 2, "the lost prompt was not posted again"
    assert [t for t, count in texts.items() if count > 1] == [lost]


def test_silent_or_dropped_websocket_is_recovered_from_history(chaos: Cluster) -> None:
    silent, dropping = chaos.fakes
    before, dropped = posted(silent), int(stat(dropping, "ws_dropped"))
    handle = jobs.submit(request(paragraphs(8, "quiet")), chaos.settings)
    wait_mid_chunk(silent, after=before)
    silent.configure(ws_silent=True)  # open, but not a word until the job is over
    dropping.configure(ws_drop=3)  # the socket closes as each of the next three prompts starts

    result = wait_for(handle, 60, chaos.pool)

    assert_complete_in_order(chaos.settings, handle, result, 8)
    assert int(stat(dropping, "ws_dropped")) > dropped
    # Every chunk was found in /history or on a new socket: none had to be synthesized again.
    texts = job_posts(chaos.fakes, chaos.settings, handle.id)
    assert all(count == 1 for count in texts.values()), texts


def test_poison_chunk_fails_its_job_and_spares_the_others(chaos: Cluster) -> None:
    message = "CUDA error: an illegal memory access was encountered"
    poison = "Record bad part three."  # the third chunk of the bad job (numbers are spoken), nothing else
    for fake in chaos.fakes:
        fake.configure(fail_node="VibeVoiceTTS", fail_marker=poison, fail_message=message, synth_seconds=0.3)
    bad = jobs.submit(request(paragraphs(6, "bad")), chaos.settings)
    good = [jobs.submit(request(paragraphs(6, f"good{i}")), chaos.settings) for i in range(2)]

    with pytest.raises(JobFailed) as failure:
        bad.wait(timeout=60)
    results = [wait_for(handle, 60, chaos.pool) for handle in good]

    assert "chunk 2:" in str(failure.value) and message in str(failure.value), failure.value
    assert bad.status() == "FAILURE"
    tries = job_posts(chaos.fakes, chaos.settings, bad.id)[manifest_texts(chaos.settings, bad.id)[2]]
    assert 1 <= tries <= 1 + MAX_RETRIES, tries
    for handle, result in zip(good, results, strict=True):
        assert_complete_in_order(chaos.settings, handle, result, 6)
