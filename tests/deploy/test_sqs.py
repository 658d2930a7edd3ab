"""SQS as the broker (kombu's SQS transport against moto's server), Redis as the result backend."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config

from narrator import jobs
from narrator.errors import ConfigurationError
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.tasks import sqs
from tests.deploy.test_metrics import Samples, samples_when, scrape, value
from tests.support.moto import DUMMY_CREDENTIALS, MotoServer, _stop, _wait_ready
from tests.support.procs import ROOT, RedisServer, WorkerPool, free_port, wait_until

SENTENCE = "Chunk number {n} of the test carries a sentence that is long enough to stand on its own as speech."
#: A chunk limit whose visibility timeout (2 x 100 + 60 s) no queue has by chance.
LIMIT_ENV = {"NARRATOR_CHUNK_SOFT_TIME_LIMIT": "90", "NARRATOR_CHUNK_TIME_LIMIT": "100"}
TARGET = 260


@pytest.fixture
def sqs_settings(moto_server: MotoServer, redis_server: RedisServer, aws_env: None, tmp_path: Path) -> Settings:
    redis_server.flush()
    _reset_moto(moto_server)
    host = moto_server.endpoint_url.removeprefix("http://")
    return Settings(
        broker_url=f"sqs://testing:testing@{host}",
        result_backend=redis_server.url,
        storage_url=(tmp_path / "store").as_uri(),
        workflows_dir=PROJECT_WORKFLOWS,
    )


def _reset_moto(moto_server: MotoServer) -> None:
    import httpx

    httpx.post(f"{moto_server.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


def _sqs(moto_server: MotoServer) -> Any:
    return boto3.client("sqs", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")


def _timeout(client: Any, url: str) -> int:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    return int(attributes["VisibilityTimeout"])


@pytest.mark.integration
def test_ten_chunk_job_through_sqs(sqs_settings: Settings, worker_pool: WorkerPool, moto_server: MotoServer) -> None:
    env = dict(DUMMY_CREDENTIALS)
    gpu_port = free_port()
    worker_pool.start(sqs_settings, queues="narrator.cpu", concurrency=1, extra_env=env)
    worker_pool.start(sqs_settings, queues="narrator.gpu", concurrency=2,
                      extra_env={**env, "NARRATOR_METRICS_PORT": str(gpu_port)})

    text = "\n\n".join(SENTENCE.format(n=n) for n in range(1, 11))
    handle = jobs.submit({"text": text}, sqs_settings)  # paragraphs are hard chunk boundaries
    result = handle.wait(timeout=150)

    assert result.success and result.chunks == 10
    # The work went through SQS: narrator's queues are there, and empty.
    urls = _sqs(moto_server).list_queues().get("QueueUrls", [])
    assert any(url.endswith("/narrator-cpu") for url in urls), urls
    assert any(url.endswith("/narrator-gpu") for url in urls), urls
    # SQS carries no Celery events: the workers' own metrics are the monitoring.
    samples = samples_when(lambda: _chunks_done(gpu_port, 10), 20, "chunk metrics")
    assert value(samples, "narrator_chunks_started_total") == 10
    assert ("narrator_queue_depth", (("queue", "narrator.gpu"),)) in samples


def _chunks_done(port: int, n: int) -> Samples | None:
    samples = scrape(port)
    return samples if value(samples, "narrator_chunks_succeeded_total", cached="false") >= n else None


# The visibility timeout follows the chunk limit on queues that already exist.


@pytest.mark.integration
def test_worker_sets_the_visibility_timeout_of_an_existing_queue(
    sqs_settings: Settings, worker_pool: WorkerPool, moto_server: MotoServer
) -> None:
    client = _sqs(moto_server)
    url = client.create_queue(QueueName="narrator-gpu", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]

    worker = worker_pool.start(sqs_settings, queues="narrator.gpu", extra_env={**DUMMY_CREDENTIALS, **LIMIT_ENV})

    # The worker logs " ready." after its start hook, so the attribute is already set; the poll is a margin.
    wait_until(lambda: _timeout(client, url) == TARGET, 10, f"VisibilityTimeout {TARGET}:\n{worker.logs()}")
    assert f"VisibilityTimeout 30 -> {TARGET} s" in worker.logs()


@pytest.mark.integration
def test_sync_visibility_against_sqs(sqs_settings: Settings, moto_server: MotoServer) -> None:
    client = _sqs(moto_server)
    url = client.create_queue(QueueName="narrator-cpu", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]

    first = sqs.sync_visibility(client, "narrator.cpu", "", TARGET)
    assert (first.outcome, first.url, first.before) == (sqs.SET, url, 30)
    assert _timeout(client, url) == TARGET
    again = sqs.sync_visibility(client, "narrator.cpu", url, TARGET)
    assert (again.outcome, again.before) == (sqs.KEPT, TARGET)
    # kombu creates a missing queue itself, with the timeout; a predefined one must exist.
    assert sqs.sync_visibility(client, "narrator.gpu", "", TARGET).outcome == sqs.MISSING
    gone = sqs.sync_visibility(client, "narrator.gpu", url.replace("narrator-cpu", "gone"), TARGET)
    assert gone.outcome == sqs.MISSING
    # SQS out of reach: botocore's error becomes an outcome (the worker warns and runs on).
    dead = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",
                        config=Config(connect_timeout=2, retries={"total_max_attempts": 1}))
    unreachable = sqs.sync_visibility(dead, "narrator.cpu", url, TARGET)
    assert unreachable.outcome == sqs.FAILED and "Could not connect" in unreachable.detail


@pytest.fixture
def iam_moto(tmp_path: Path, aws_env: None) -> Iterator[str]:
    """A moto server of its own that checks IAM policies after its first four calls."""
    port = free_port()
    log_path = tmp_path / "moto-iam.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield url
    finally:
        _stop(process)


@pytest.mark.integration
def test_a_worker_not_allowed_to_set_the_timeout_warns_and_starts(
    iam_moto: str, redis_server: RedisServer, worker_pool: WorkerPool, tmp_path: Path
) -> None:
    # The four unchecked calls: a user allowed everything on SQS but SetQueueAttributes, and the queue.
    iam = boto3.client("iam", endpoint_url=iam_moto, region_name="us-east-1")
    iam.create_user(UserName="worker")
    iam.put_user_policy(UserName="worker", PolicyName="sqs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "sqs:SetQueueAttributes", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="worker")["AccessKey"]
    url = _sqs_at(iam_moto).create_queue(QueueName="narrator-gpu", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    worker_key = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    user = f"{quote(key['AccessKeyId'], safe='')}:{quote(key['SecretAccessKey'], safe='')}"
    settings = Settings(broker_url=f"sqs://{user}@{iam_moto.removeprefix('http://')}",
                        result_backend=redis_server.url, storage_url=(tmp_path / "store").as_uri())

    worker = worker_pool.start(settings, queues="narrator.gpu", extra_env={**worker_key, **LIMIT_ENV})

    assert (f"WARNING narrator.tasks.sqs: SQS queue narrator.gpu ({url}): not allowed to set VisibilityTimeout"
            in worker.logs()), worker.logs()
    assert f"set the queue attribute VisibilityTimeout={TARGET} yourself" in worker.logs()
    client = _sqs_at(iam_moto, **{k.lower(): v for k, v in worker_key.items()})
    assert _timeout(client, url) == 30
    assert sqs.sync_visibility(client, "narrator.gpu", url, TARGET).outcome == sqs.DENIED


def _sqs_at(endpoint: str, **credentials: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **credentials)


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [
        ("AccessDenied", 403, sqs.DENIED),
        ("AccessDeniedException", 400, sqs.DENIED),
        ("403", 403, sqs.DENIED),  # a denial botocore could not parse
        ("InvalidClientTokenId", 403, sqs.FAILED),  # bad credentials are not a missing permission
        ("AWS.SimpleQueueService.NonExistentQueue", 400, sqs.MISSING),
        ("QueueDoesNotExist", 400, sqs.MISSING),
        ("InvalidAttributeValue", 400, sqs.FAILED),
        ("RequestThrottled", 403, sqs.FAILED),
    ],
)
def test_sqs_error_codes(code: str, status: int, outcome: str) -> None:
    assert sqs.outcome_of(code, status) == outcome


URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-narrator-gpu"


@pytest.mark.parametrize(
    ("result", "level", "says"),
    [
        (sqs.QueueTimeout("narrator.gpu", URL, 1500, sqs.SET, 30), logging.INFO, "VisibilityTimeout 30 -> 1500 s"),
        (sqs.QueueTimeout("narrator.gpu", URL, 1500, sqs.KEPT, 1500), logging.INFO, "VisibilityTimeout is 1500 s"),
        (sqs.QueueTimeout("narrator.gpu", "narrator-gpu", 1500, sqs.MISSING), logging.INFO,
         "kombu creates it with VisibilityTimeout=1500"),
        # No permission: a warning naming the attribute and the value to set, and how.
        (sqs.QueueTimeout("narrator.gpu", URL, 1500, sqs.DENIED, detail="AccessDenied: no"), logging.WARNING,
         f"not allowed to set VisibilityTimeout (AccessDenied: no); set the queue attribute VisibilityTimeout=1500 "
         f"yourself (aws sqs set-queue-attributes --queue-url {URL} --attributes VisibilityTimeout=1500)"),
        (sqs.QueueTimeout("narrator.gpu", URL, 1500, sqs.FAILED, detail="timed out"), logging.WARNING,
         "could not set VisibilityTimeout (timed out); set the queue attribute VisibilityTimeout=1500"),
    ],
)
def test_what_a_worker_says_about_a_queue(result: sqs.QueueTimeout, level: int, says: str) -> None:
    said_level, line = sqs.report(result, predefined=False)
    assert said_level == level
    assert line.startswith(f"SQS queue narrator.gpu ({result.url})") and says in line, line


def test_a_missing_predefined_queue_stops_the_worker() -> None:
    with pytest.raises(ConfigurationError, match=f"^NARRATOR_SQS_QUEUES: SQS queue narrator.gpu \\({URL}\\) does not"):
        sqs.report(sqs.QueueTimeout("narrator.gpu", URL, 1500, sqs.MISSING), predefined=True)


# Predefined queues: narrator runs on queues it may not create.


@pytest.mark.integration
def test_job_runs_through_predefined_queues(
    sqs_settings: Settings, worker_pool: WorkerPool, moto_server: MotoServer
) -> None:
    client = _sqs(moto_server)
    urls = {
        name: client.create_queue(QueueName=f"ops-{name.replace('.', '-')}-queue",
                                  Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        for name in ("narrator.cpu", "narrator.gpu")
    }
    entries = tuple(f"{name}={url}" for name, url in urls.items())
    settings = sqs_settings.with_(sqs_queues=entries)
    env = {**DUMMY_CREDENTIALS, **LIMIT_ENV, "NARRATOR_SQS_QUEUES": ",".join(entries)}
    worker_pool.start(settings, queues="narrator.cpu", extra_env=env)
    worker_pool.start(settings, queues="narrator.gpu", extra_env=env)

    text = "\n\n".join(SENTENCE.format(n=n) for n in range(1, 4))
    result = jobs.submit({"text": text}, settings).wait(timeout=120)

    assert result.success and result.chunks == 3, worker_pool.logs()
    # No CreateQueue: the two queues made above are all there is, and each worker set its timeout.
    assert sorted(client.list_queues().get("QueueUrls", [])) == sorted(urls.values())
    assert {name: _timeout(client, url) for name, url in urls.items()} == dict.fromkeys(urls, TARGET)


@pytest.mark.integration
def test_a_worker_stops_when_a_predefined_queue_does_not_exist(
    sqs_settings: Settings, worker_pool: WorkerPool, moto_server: MotoServer
) -> None:
    cpu = _sqs(moto_server).create_queue(QueueName="ops-cpu")["QueueUrl"]
    entries = f"narrator.cpu={cpu},narrator.gpu={cpu.replace('ops-cpu', 'ops-gpu')}"
    worker = worker_pool.start(sqs_settings, queues="narrator.gpu", wait=False,
                               extra_env={**DUMMY_CREDENTIALS, "NARRATOR_SQS_QUEUES": entries})

    wait_until(lambda: worker.proc.poll() is not None, 60, f"the worker to exit:\n{worker.logs()}", 0.2)
    assert worker.proc.returncode != 0
    assert "worker not started: NARRATOR_SQS_QUEUES: SQS queue narrator.gpu" in worker.logs()
    assert " ready." not in worker.logs()


# Every entry point refuses an SQS broker without a result backend, at once, naming the variable.

ENTRY_POINTS = {
    "narrator worker": ["-m", "narrator.cli", "worker", "--queues", "cpu"],
    "narrator submit": ["-m", "narrator.cli", "submit", "Hello."],
    "narrator speak": ["-m", "narrator.cli", "speak", "Hello.", "-o", "out.wav"],
    "narrator status": ["-m", "narrator.cli", "status", uuid.uuid4().hex],
    "runpod handler": ["-m", "narrator.runpod_handler"],
    "celery worker": ["-m", "celery", "-A", "narrator.tasks.worker", "worker", "-Q", "narrator.cpu"],
}


@pytest.mark.integration
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_refuse_sqs_without_a_result_backend(entry: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATOR_", "AWS_", "RUNPOD_"))}
    # Nothing listens on port 9: the refusal comes before any connection.
    env |= {"NARRATOR_BROKER_URL": "sqs://testing:testing@127.0.0.1:9", "PYTHONPATH": str(ROOT),
            "NARRATOR_STORAGE_URL": (tmp_path / "store").as_uri(), **DUMMY_CREDENTIALS}
    done = subprocess.run([sys.executable, *ENTRY_POINTS[entry]], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)

    assert done.returncode != 0
    assert "NARRATOR_RESULT_BACKEND: an SQS broker needs a result backend" in done.stderr, done.stderr
