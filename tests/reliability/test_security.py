"""Secrets stay out of logs, task arguments, results and errors; presigned URLs expire as configured.

Real worker processes run with secrets in their environment (AWS keys, an HF
token, a RunPod key, the Flower password, a Redis password in the broker URL),
JSON logs and DEBUG logging, against a password-protected Redis and S3 (moto).
After a good job, a RunPod request and two failing jobs, every log file, every
key of the result backend, every JSON object in the bucket and every error
message is searched for the secret values.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from narrator import jobs, runpod_handler
from narrator.errors import InvalidRequest, JobFailed
from narrator.ops.logs import ContextFilter, JsonFormatter, setup_logging
from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.reliability.conftest import PasswordRedis, Workers, redis_dump
from tests.support.moto import MotoServer
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

TEXT = "Nothing secret is said here. The keys stay where they were put, and the logs stay clean."
PRESIGN_MAX = 900


@dataclass(frozen=True)
class Secrets:
    aws_key_id: str
    aws_secret: str
    hf_token: str
    runpod_key: str
    flower_password: str
    redis_password: str

    @classmethod
    def fresh(cls) -> Secrets:
        token = secrets.token_hex
        return cls(
            aws_key_id="AKIA" + token(8).upper(),
            aws_secret="nrtrSecret/" + token(16),
            hf_token="hf_" + token(16),
            runpod_key="rpa_" + token(16).upper(),
            flower_password="flower-" + token(12),
            redis_password="redis-" + token(12),
        )

    def never_shown(self) -> dict[str, str]:
        """Values that must appear nowhere. The access key id is checked apart (see below)."""
        return {
            "AWS_SECRET_ACCESS_KEY": self.aws_secret,
            "HF_TOKEN": self.hf_token,
            "RUNPOD_AI_API_KEY": self.runpod_key,
            "Flower password": self.flower_password,
            "Redis password": self.redis_password,
        }

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.aws_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "HF_TOKEN": self.hf_token,
            "RUNPOD_AI_API_KEY": self.runpod_key,
            "NARRATOR_FLOWER_BASIC_AUTH": f"admin:{self.flower_password}",
        }


# SigV4 presigned URLs name the access key id (an identifier, not the secret) in their credential scope.
PRESIGNED_CREDENTIAL = re.compile(r"X-Amz-Credential=([A-Z0-9]+)(%2F|/)")


@pytest.fixture
def secret_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Secrets:
    values = Secrets.fresh()
    for name, value in values.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return values


@pytest.fixture
def locked_redis(tmp_path: Path, secret_values: Secrets) -> Iterator[PasswordRedis]:
    server = PasswordRedis(free_port(), tmp_path, secret_values.redis_password)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def missing_voice_origin() -> Iterator[str]:
    """A voice URL whose server answers 404: the job fails in a worker, after admission."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/voices/missing.wav"
    server.shutdown()
    server.server_close()


@contextmanager
def entry_point_logging(path: Path) -> Iterator[None]:
    """Log in this process as an entry point does (JSON, verbose), into ``path`` as well."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    third_party = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "s3transfer", "urllib3")}
    setup_logging(verbose=True, json_logs=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    try:
        yield
    finally:
        handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in third_party.items():
            logging.getLogger(name).setLevel(level)


def expires(url: str | None) -> int:
    assert url is not None
    return int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])


def test_no_secret_reaches_logs_results_or_errors(
    secret_values: Secrets,
    locked_redis: PasswordRedis,
    moto_server: MotoServer,
    workers: Workers,
    missing_voice_origin: str,
    tmp_path: Path,
) -> None:
    bucket = moto_server.create_bucket()
    settings = Settings(
        broker_url=locked_redis.url,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=moto_server.endpoint_url,
        workflows_dir=PROJECT_WORKFLOWS,
        default_model="local",
        presign_max_seconds=PRESIGN_MAX,
        fetch_allow=("127.0.0.1",),
        log_json=True,
        flower_basic_auth=f"admin:{secret_values.flower_password}",
    )
    env = {**secret_values.env(), "NARRATOR_LOG_JSON": "true", "NARRATOR_PRESIGN_MAX_SECONDS": str(PRESIGN_MAX)}
    workers.start(settings, concurrency=2, env=env, loglevel="DEBUG")
    shown: list[str] = []  # everything a caller is handed back
    own_log = tmp_path / "producer.log"
    with entry_point_logging(own_log):
        run_jobs(settings, missing_voice_origin, shown)

    logs = workers.logs() + "\n" + own_log.read_text()
    stored = stored_json(moto_server, bucket)
    places = {"logs": logs, "result backend": redis_dump(locked_redis.url), "storage JSON": stored,
              "answers and errors": "\n".join(shown)}

    # The search means something: JSON logs at DEBUG with job ids, errors and task results were captured.
    json_lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") for line in json_lines)
    assert any(line.get("message") == "runpod job submitted" for line in json_lines)
    assert "server answered 404" in logs and "error.json" in stored and "result.json" in stored
    assert "celery-task-meta-" in places["result backend"]

    for place, text in places.items():
        for name, value in secret_values.never_shown().items():
            assert value not in text, f"{name} appears in {place}"
        # The access key id may appear only as a presigned URL's credential scope.
        scopes = set(PRESIGNED_CREDENTIAL.findall(text))
        assert {key for key, _ in scopes} <= {secret_values.aws_key_id}
        assert secret_values.aws_key_id not in PRESIGNED_CREDENTIAL.sub("", text), f"AWS key id in {place}"


def run_jobs(settings: Settings, missing_voice: str, shown: list[str]) -> None:
    """Good jobs, a refused one and failing ones, through submit() and the RunPod handler."""
    # A good job: the request shortens the URL's life.
    result = jobs.submit({"text": TEXT, "output": {"url_expires": 600}}, settings).wait(timeout=90)
    assert expires(result.audio_url) == 600 and expires(result.captions_url) == 600
    download = httpx.get(str(result.audio_url), timeout=30)
    assert download.status_code == 200 and download.content[:4] == b"RIFF"
    shown.append(result.model_dump_json())

    # No expiry asked for: the default (a day) is capped at the configured maximum.
    capped = jobs.submit({"text": TEXT}, settings).wait(timeout=90)
    assert expires(capped.audio_url) == PRESIGN_MAX
    shown.append(capped.model_dump_json())

    # Longer than the maximum: refused at admission, before anything is queued.
    with pytest.raises(InvalidRequest, match=r"^output\.url_expires: "):
        jobs.submit({"text": TEXT, "output": {"url_expires": PRESIGN_MAX + 1}}, settings)

    # Through the RunPod handler: the same limits, the same scrubbed answers.
    runpod_handler.configure(settings, post_updates=False)
    good = {"text": TEXT, "output": {"url_expires": 300}}
    out = runpod_handler.handler({"id": "rp-good", "input": good})
    assert out.get("error") is None and expires(out["audio_url"]) == 300, out
    shown.append(json.dumps(out))

    # Two failures, in a worker: a voice that cannot be fetched (submit, then RunPod).
    failing = {"text": TEXT, "reference_audio_url": missing_voice}
    with pytest.raises(JobFailed, match="reference_audio_url: server answered 404") as failed:
        jobs.submit(failing, settings).wait(timeout=60)
    shown.append(str(failed.value))
    out = runpod_handler.handler({"id": "rp-bad", "input": failing})
    assert "reference_audio_url: server answered 404" in out["error"], out
    shown.append(json.dumps(out))



def stored_json(moto: MotoServer, bucket: str) -> str:
    """Every JSON object in the bucket (manifests, results, errors), keyed by name."""
    client = moto.client()
    out = []
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        if item["Key"].endswith(".json"):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            out.append(f"{item['Key']} {body}")
    return "\n".join(out)
