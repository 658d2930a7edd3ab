"""S3-only behaviour: URL parsing, prefixes, multipart, paging, presigning, error translation.

Tests of what a server does run on moto and on SeaweedFS (``s3_target``, the worker's key);
fault injection stays on moto and on a fixed-answer endpoint."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from narrator.errors import InvalidRequest, ObjectNotFound, StorageError, StoragePermanentError
from narrator.settings import Settings
from narrator.storage import open_store
from narrator.storage.s3 import S3Store, translate
from tests.support.moto import free_port
from tests.support.seaweed import S3Target

SECRET = "sEcReT-should-never-appear-0123456789"
ACCESS_KEY = "AKIAEXAMPLENEVERSHOWN"


def s3(settings: Settings, url: str | None = None, **options: Any) -> S3Store:
    options = {"connect_timeout": 1.0, "read_timeout": 5.0, "max_attempts": 1, **options}
    return S3Store.from_url(url or settings.storage_url, settings, **options)


# -- construction ---------------------------------------------------------------


def test_open_store_picks_s3(s3_settings: Settings) -> None:
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    assert store.url == s3_settings.storage_url


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my-bucket/narrator", "my-bucket", "narrator"),
        ("s3://my-bucket/a/b/", "my-bucket", "a/b"),
    ],
)
def test_from_url(url: str, bucket: str, prefix: str) -> None:
    store = S3Store.from_url(url, Settings(s3_endpoint_url="http://127.0.0.1:9"))
    assert (store.bucket, store.prefix) == (bucket, prefix)


@pytest.mark.parametrize(
    "url",
    ["s3://", "file:///tmp/x", "s3://UPPER", "s3://a", "s3://user:pw@bucket/x", "s3://bucket/../x", "s3://b_b/x"],
)
def test_from_url_refuses(url: str) -> None:
    with pytest.raises((InvalidRequest, StoragePermanentError)) as info:
        S3Store.from_url(url, Settings())
    assert "pw" not in str(info.value)


# -- layout and transfer ---------------------------------------------------------


def test_prefix_maps_keys(s3_target: S3Target) -> None:
    store = s3(s3_target.settings, f"{s3_target.base}/team/narrator")
    store.put_bytes("jobs/j1/manifest.json", b"{}", content_type="application/json")
    raw = s3_target.raw
    head = raw.head_object(Bucket=s3_target.bucket, Key=s3_target.key("team/narrator/jobs/j1/manifest.json"))
    assert head["ContentType"] == "application/json"
    # Objects outside the prefix are invisible to the store.
    raw.put_object(Bucket=s3_target.bucket, Key=s3_target.key("team/other/x"), Body=b"x")
    raw.put_object(Bucket=s3_target.bucket, Key=s3_target.key("team/narrator/folder/"), Body=b"")
    assert store.list("") == ["jobs/j1/manifest.json"]


def test_put_file_goes_multipart(s3_target: S3Target, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(21 * 1024 * 1024))
    store = s3(s3_target.settings, read_timeout=30.0)
    store.put_file("jobs/j1/output.wav", src, content_type="audio/wav")
    head = s3_target.raw.head_object(Bucket=s3_target.bucket, Key=s3_target.key("jobs/j1/output.wav"))
    # An S3 multipart ETag is md5(part md5s) + "-<parts>"; 21 MB in 16 MB parts is two.
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == 21 * 1024 * 1024
    assert head["ContentType"] == "audio/wav"
    assert store.get_bytes("jobs/j1/output.wav") == src.read_bytes()


def test_small_put_file_is_one_request(s3_target: S3Target, tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    src.write_bytes(b"x" * 1000)
    store = s3(s3_target.settings)
    store.put_file("small", src)
    head = s3_target.raw.head_object(Bucket=s3_target.bucket, Key=s3_target.key("small"))
    assert "-" not in head["ETag"]


def test_large_copy_stays_server_side(s3_target: S3Target, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    store = s3(s3_target.settings, multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    # Small thresholds: a 3 MB object is copied whole; the copy keeps its bytes.
    store.put_file("cache/a", src)
    sent: list[str] = []
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: sent.append(model.name))
    store.copy("cache/a", "jobs/j/chunks/00001.flac")
    assert "CopyObject" in sent and "PutObject" not in sent and "GetObject" not in sent
    assert store.get_bytes("jobs/j/chunks/00001.flac") == src.read_bytes()


def test_list_pages(s3_target: S3Target) -> None:
    store = s3(s3_target.settings, page_size=5)
    for i in range(23):
        store.put_bytes(f"jobs/j/chunks/{i:05d}.flac", b"c")
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))
    assert len(store.list("jobs/j/chunks/")) == 23
    assert len(calls) == 5


def test_presigned_url_carries_expiry(s3_target: S3Target) -> None:
    store = s3(s3_target.settings)
    store.put_bytes("jobs/j1/output.flac", b"fLaC")
    url = store.presigned_url("jobs/j1/output.flac", 120)
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "testing" not in query["X-Amz-Signature"][0]
    assert httpx.get(url, timeout=10).content == b"fLaC"


@pytest.mark.parametrize("expires", [0, -5, 7 * 24 * 3600 + 1])
def test_presigned_expiry_bounds(s3_settings: Settings, expires: int) -> None:
    with pytest.raises(StoragePermanentError, match="expiry"):
        s3(s3_settings).presigned_url("k", expires)


# -- errors against real endpoints --------------------------------------------------


# moto checks no keys, so it says NoSuchBucket; SeaweedFS tells a bucket-scoped key AccessDenied
# for any other bucket, there or not. Either way the job fails at once, naming the code.
MISSING_BUCKET_CODE = {"moto": "NoSuchBucket", "seaweed": "AccessDenied"}


def test_missing_bucket_is_permanent(s3_target: S3Target, tmp_path: Path) -> None:
    store = s3(s3_target.settings, "s3://no-such-bucket-here/p")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for call in [
        lambda: store.put_bytes("k", b"x"),
        lambda: store.put_file("k", src),
        lambda: store.get_bytes("k"),
        lambda: store.list("jobs/"),
        lambda: store.delete("k"),
    ]:
        with pytest.raises(StoragePermanentError, match=MISSING_BUCKET_CODE[s3_target.name]):
            call()


def test_missing_object_on_every_read(s3_target: S3Target, tmp_path: Path) -> None:
    store = s3(s3_target.settings)
    assert not store.exists("gone")
    for call in [lambda: store.get_bytes("gone"), lambda: store.get_file("gone", tmp_path / "o")]:
        with pytest.raises(ObjectNotFound, match="get gone"):
            call()


def test_nobody_listening_is_retryable_and_quick(s3_settings: Settings) -> None:
    settings = s3_settings.with_(s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    store = s3(settings, max_attempts=2, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StorageError, match="get jobs/x") as info:
        store.get_bytes("jobs/x")
    assert time.monotonic() - started < 5
    assert info.value.retryable


class _FixedAnswer(BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request with one configured error."""

    status = 503
    code = "SlowDown"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = f"<Error><Code>{self.code}</Code><Message>nope</Message></Error>".encode()
        self.server.hits += 1  # type: ignore[attr-defined]
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fixed_answer(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    handler = type("Handler", (_FixedAnswer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "SlowDown", StorageError),
        (500, "InternalError", StorageError),
        (503, "ServiceUnavailable", StorageError),
        (400, "RequestTimeout", StorageError),
        (403, "AccessDenied", StoragePermanentError),
        (403, "InvalidAccessKeyId", StoragePermanentError),
        (403, "SignatureDoesNotMatch", StoragePermanentError),
        (404, "NoSuchBucket", StoragePermanentError),
        (400, "InvalidArgument", StoragePermanentError),
        (404, "NoSuchKey", ObjectNotFound),
    ],
)
def test_service_errors_translated(
    fixed_answer: ThreadingHTTPServer,
    status: int,
    code: str,
    error: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fixed_answer.RequestHandlerClass.status = status  # type: ignore[attr-defined]
    fixed_answer.RequestHandlerClass.code = code  # type: ignore[attr-defined]
    port = fixed_answer.server_address[1]
    settings = Settings(s3_endpoint_url=f"http://127.0.0.1:{port}")
    store = s3(settings, "s3://bucket/p", max_attempts=2)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(error) as info:
        store.get_bytes("jobs/j1/output.wav")
    message = str(info.value)
    assert "get jobs/j1/output.wav" in message
    assert code in message or error is ObjectNotFound
    assert SECRET not in message and ACCESS_KEY not in message
    assert SECRET not in caplog.text  # botocore's own DEBUG logs included
    narrator_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("narrator"))
    assert ACCESS_KEY not in narrator_logs
    # Retryable answers were retried by botocore within its bound; others were not.
    assert fixed_answer.hits == (2 if error is StorageError else 1)  # type: ignore[attr-defined]


def _client_error(status: int, code: str, op: str = "GetObject") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, op)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error(404, "404", "HeadObject"), ObjectNotFound),
        (_client_error(404, "NoSuchKey"), ObjectNotFound),
        (_client_error(404, "NoSuchBucket"), StoragePermanentError),
        (_client_error(403, "AccessDenied"), StoragePermanentError),
        (_client_error(403, "InvalidAccessKeyId"), StoragePermanentError),
        (_client_error(400, "EntityTooLarge"), StoragePermanentError),
        (_client_error(429, "TooManyRequests"), StorageError),
        (_client_error(503, "SlowDown"), StorageError),
        (_client_error(502, ""), StorageError),
        (_client_error(400, "Throttling"), StorageError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StorageError),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), StorageError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), StorageError),
        (NoCredentialsError(), StoragePermanentError),
        (ParamValidationError(report="bad"), StoragePermanentError),
    ],
)
def test_translate_table(exc: Exception, expected: type[Exception]) -> None:
    translated = translate(exc, "get", "jobs/k")
    assert type(translated) is expected
    assert str(translated).startswith("get jobs/k: ")


def test_translate_scrubs_signatures() -> None:
    exc = _client_error(403, "AccessDenied")
    exc.response["Error"]["Message"] = "denied for /b/k?X-Amz-Signature=abcdef123&X-Amz-Credential=AKIAXX/2024"
    message = str(translate(exc, "get", "k"))
    assert "abcdef123" not in message and "AKIAXX" not in message
