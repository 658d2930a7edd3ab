"""narrator.runpod.client against the fake RunPod REST API over real HTTP on loopback.

Jobs run on the fake's in-process workers (``NarratorWork``: the handler's output shapes).
Nothing waits on a clock to synchronise: workers are held on gates the test opens, or on
the client having seen an update.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from narrator.comfy.client import Deadline
from narrator.errors import (
    ConfigurationError,
    EndpointNotFound,
    JobCancelled,
    NarratorError,
    RemoteDeadlineExceeded,
    RemoteJobFailed,
    RemoteJobNotFound,
    RemoteJobNotStarted,
    RemoteJobTimedOut,
    RemoteRateLimited,
    RemoteUnauthorized,
    RemoteUnavailable,
)
from narrator.runpod.client import RunPodClient
from narrator.runpod.client_http import RetryPolicy
from narrator.runpod.client_types import RemoteJob
from narrator.settings import Settings
from tests.fakes.runpod_api import ENDPOINT
from tests.fakes.runpod_rest import API_KEY, FakeServerless, NarratorWork, Report, Work

FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, backoff_max=0.05)
TEXT = {"text": "Hello from a backend."}

MakeFake = Callable[..., FakeServerless]


@pytest.fixture
def make_fake() -> Iterator[MakeFake]:
    fakes: list[FakeServerless] = []

    def make(work: Work | None = None, **options: Any) -> FakeServerless:
        fake = FakeServerless(work=work or NarratorWork(), **{"workers": 1, **options}).__enter__()
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def client_for(fake: FakeServerless, **options: Any) -> RunPodClient:
    options = {"retry": FAST_RETRY, "request_timeout": 5.0, **options}
    endpoint = options.pop("endpoint", ENDPOINT)
    key = options.pop("key", API_KEY)
    return RunPodClient(endpoint, key, api_url=fake.api_url, **options)


def test_a_job_goes_through_every_status_and_reports_its_times(make_fake: MakeFake) -> None:
    gate = threading.Event()
    fake = make_fake(NarratorWork(gate=gate))
    with client_for(fake) as client:
        first = client.run(TEXT)
        assert first.status == "IN_QUEUE" and not first.terminal
        fake.wait_status(first.id, {"IN_PROGRESS"})
        second = client.run(TEXT)  # the one worker is busy
        assert client.status(second.id).status == "IN_QUEUE"
        running = client.status(first.id)
        assert running.status == "IN_PROGRESS" and running.output["chunks_done"] == 3
        fake.open(gate)
        done = client.wait(first.id, Deadline(30), poll=0.02)
        later = client.wait(second.id, Deadline(30), poll=0.02)
    assert done.status == "COMPLETED" and done.terminal and done.output["success"] is True
    assert later.delay_ms is not None and later.delay_ms > 0 and later.execution_ms is not None
    assert fake.job(second.id).history == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert fake.running() == []


def test_every_progress_update_reaches_on_update_in_order(make_fake: MakeFake) -> None:
    seen = {n: threading.Event() for n in range(1, 4)}
    def hold(job_id: str, n: int) -> None:
        seen[n].wait(30)

    fake = make_fake(NarratorWork(chunks=3, seen=hold))
    updates: list[RemoteJob] = []

    def on_update(job: RemoteJob) -> None:
        updates.append(job)
        if job.status == "IN_PROGRESS":
            seen[job.output["chunks_done"]].set()  # the worker goes on once we saw this one

    with client_for(fake) as client:
        job = client.run(TEXT)
        client.wait(job.id, Deadline(30), on_update=on_update, poll=0.02)
    progress = [u.output["chunks_done"] for u in updates if u.status == "IN_PROGRESS"]
    assert progress == [1, 2, 3]
    assert updates[-1].status == "COMPLETED"
    assert all(u.output["chunks_total"] == 3 for u in updates if u.status == "IN_PROGRESS")


def test_stream_items_arrive_once_each_in_order(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(chunks=4))
    items: list[Any] = []
    with client_for(fake) as client:
        job = client.run({**TEXT, "stream": True})
        done = client.wait(job.id, Deadline(30), on_stream=items.append, poll=0.02)
        assert client.stream(job.id)[1] == []  # all read already
    assert [i["chunk"] for i in items] == [0, 1, 2, 3]
    assert all(i["audio_url"].endswith(f"chunk-{i['chunk']}.flac?X-Amz-Signature=abc") for i in items)
    assert done.output["success"] is True


def test_runsync_answers_the_finished_job(make_fake: MakeFake) -> None:
    fake = make_fake()
    with client_for(fake) as client:
        job = client.runsync(TEXT, wait_ms=30_000)
    assert job.status == "COMPLETED" and job.output["format"] == "wav"


def test_health_counts_jobs_and_workers(make_fake: MakeFake) -> None:
    fake = make_fake(workers=2)
    with client_for(fake) as client:
        client.wait(client.run(TEXT).id, Deadline(30), poll=0.02)
        health = client.health()
    assert health.jobs["completed"] == 1 and health.jobs["inQueue"] == 0
    assert health.workers["idle"] + health.workers["running"] >= 1
    assert set(health.to_json()["workers"]) >= {"idle", "initializing", "running", "throttled", "unhealthy"}


def failing(message: str) -> Work:
    def work(job: dict[str, Any], report: Report) -> Any:
        raise RuntimeError(message)

    return work


ENDINGS: dict[str, tuple[Work, type[NarratorError], str]] = {
    "work raises": (failing("CUDA out of memory"), RemoteJobFailed, "failed: CUDA out of memory"),
    "handler error": (NarratorWork(error="model: this endpoint runs vibevoice-large, not local"), RemoteJobFailed,
                      "failed: model: this endpoint runs vibevoice-large, not local"),
}


@pytest.mark.parametrize("name", list(ENDINGS))
def test_a_failed_job_raises_with_the_remote_error(make_fake: MakeFake, name: str) -> None:
    work, error, text = ENDINGS[name]
    fake = make_fake(work)
    with client_for(fake) as client, pytest.raises(error) as caught:
        client.wait(client.run(TEXT).id, Deadline(30), poll=0.02)
    assert text in str(caught.value)


def test_the_endpoints_execution_timeout_is_named(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(gate=threading.Event()))
    with client_for(fake) as client:
        job = client.run(TEXT, execution_timeout_ms=200)
        with pytest.raises(RemoteJobTimedOut, match="execution timeout"):
            client.wait(job.id, Deadline(30), poll=0.02)
    assert fake.cancel_event(job.id).is_set()  # the worker was told


def test_a_job_cancelled_elsewhere_raises_job_cancelled(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(gate=threading.Event()))
    with client_for(fake) as client:
        job = client.run(TEXT)
        fake.wait_status(job.id, {"IN_PROGRESS"})
        assert client.cancel(job.id).status == "CANCELLED"
        with pytest.raises(JobCancelled):
            client.wait(job.id, Deadline(30), poll=0.02)
    assert fake.cancel_event(job.id).is_set() and fake.running() == []


def test_a_job_never_picked_up_is_cancelled(make_fake: MakeFake) -> None:
    fake = make_fake(workers=0)
    with client_for(fake) as client:
        job = client.run(TEXT)
        with pytest.raises(RemoteJobNotStarted) as caught:
            client.wait(job.id, Deadline(30), start_deadline=Deadline(0.3), poll=0.02)
    assert str(caught.value) == (
        f"endpoint {ENDPOINT} did not start job {job.id} within 0.3 s (no worker free? check the endpoint's "
        "max workers and GPU availability); it was cancelled")
    assert fake.cancels == [job.id] and fake.running() == []


def test_a_job_past_the_deadline_is_cancelled_and_its_worker_told(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(gate=threading.Event()))
    with client_for(fake) as client:
        job = client.run(TEXT)
        with pytest.raises(RemoteDeadlineExceeded, match="did not finish within 0.5 s .*it was cancelled"):
            client.wait(job.id, Deadline(0.5), poll=0.02)
    assert fake.cancels == [job.id] and fake.cancel_event(job.id).is_set() and fake.running() == []


# -- what goes wrong on the way ---------------------------------------------------------------------


def test_a_refused_key_says_which_variable_and_never_shows_the_key(make_fake: MakeFake) -> None:
    fake = make_fake()
    secret = "rpa_SECRET_not_this_one"
    with client_for(fake, key=secret) as client, pytest.raises(RemoteUnauthorized) as caught:
        client.run(TEXT)
    message = str(caught.value)
    assert "refused the API key" in message and "NARRATOR_RUNPOD_API_KEY" in message and "RUNPOD_API_KEY" in message
    assert secret not in message and secret not in repr(client)
    assert fake.count("run") == 1  # not retried


def test_an_unknown_endpoint_and_an_unknown_job(make_fake: MakeFake) -> None:
    fake = make_fake()
    with client_for(fake, endpoint="nope123") as client, pytest.raises(EndpointNotFound) as caught:
        client.run(TEXT)
    assert str(caught.value) == "no RunPod endpoint 'nope123' (check the endpoint id)"
    with client_for(fake) as client, pytest.raises(RemoteJobNotFound, match="no job 'abc-u1' on endpoint"):
        client.status("abc-u1")


@pytest.mark.parametrize(("status", "failures", "outcome"), [
    (429, 2, None), (500, 2, None), (503, 1, None),
    (429, 99, RemoteRateLimited), (500, 99, RemoteUnavailable),
])
def test_transient_answers_are_retried_a_bounded_number_of_times(
    make_fake: MakeFake, status: int, failures: int, outcome: type[NarratorError] | None
) -> None:
    fake = make_fake()
    fake.fail_next(failures, status, retry_after="0" if status == 429 else None, route="run")
    with client_for(fake) as client:
        if outcome is None:
            assert client.run(TEXT).status in ("IN_QUEUE", "IN_PROGRESS")
            assert fake.count("run", status) == failures and fake.count("run", 200) == 1
        else:
            with pytest.raises(outcome):
                client.run(TEXT)
            assert fake.count("run", status) == FAST_RETRY.attempts
    fake.fail_next(0)


def test_retry_after_is_honoured(make_fake: MakeFake) -> None:
    fake = make_fake()
    fake.fail_next(1, 429, retry_after="0.3", route="health")
    deadline = Deadline(30)
    with client_for(fake) as client:
        client.health()
    assert deadline.seconds - deadline.remaining() >= 0.3


def test_a_call_that_gets_no_answer_ends_within_its_timeout(make_fake: MakeFake) -> None:
    fake = make_fake()
    fake.hang_next(10, route="status")
    try:
        with client_for(fake, request_timeout=0.2) as client:
            job = client.run(TEXT)
            budget = Deadline(30)
            with pytest.raises(RemoteUnavailable, match="did not answer within"):
                client.status(job.id)
            assert budget.seconds - budget.remaining() < 5
    finally:
        fake.release()


def test_nobody_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with RunPodClient(ENDPOINT, API_KEY, api_url=f"http://127.0.0.1:{port}/v2", retry=FAST_RETRY) as client:
        with pytest.raises(RemoteUnavailable, match="cannot reach RunPod"):
            client.health()


def test_the_key_comes_from_settings_or_its_absence_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RunPodClient.from_settings(ENDPOINT, Settings())
    assert "NARRATOR_RUNPOD_API_KEY" in str(caught.value) and "RUNPOD_API_KEY" in str(caught.value)
    settings = Settings.from_env({"RUNPOD_API_KEY": "rpa_from_the_sdk_variable"})
    with RunPodClient.from_settings(ENDPOINT, settings) as client:
        assert "rpa_from" not in repr(client)


def test_wait_looks_again_when_the_api_fails_for_a_while(make_fake: MakeFake) -> None:
    fake = make_fake()
    with client_for(fake) as client:
        job = client.run(TEXT)
        fake.fail_next(FAST_RETRY.attempts + 1, 503, route="status")  # one whole look fails, then one try
        done = client.wait(job.id, Deadline(30), poll=0.02)
    assert done.status == "COMPLETED" and fake.count("status", 503) == FAST_RETRY.attempts + 1


def test_wait_cancels_when_the_api_fails_until_the_deadline(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(gate=threading.Event()))
    with client_for(fake) as client:
        job = client.run(TEXT)
        fake.fail_next(10_000, 503, route="status")
        with pytest.raises(RemoteDeadlineExceeded, match="no status within 0.5 s .*it was cancelled"):
            client.wait(job.id, Deadline(0.5), poll=0.02)
    assert fake.cancels == [job.id] and fake.running() == []
