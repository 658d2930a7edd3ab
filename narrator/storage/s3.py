"""An S3 bucket (AWS, MinIO, R2, moto) as object store, through boto3.

Every boto3/botocore exception is translated here, where it enters:
missing objects become :class:`ObjectNotFound`; 5xx, throttling, timeouts and
connection failures become :class:`StorageError` (retryable); everything else
the service refuses (credentials, missing bucket, other 4xx) becomes
:class:`StoragePermanentError`. Messages name the operation and the key, never
credentials: they are built from the error code and status, not from the
request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceededError

from ..errors import InvalidRequest, ObjectNotFound, StorageError, StoragePermanentError
from ..settings import Settings
from .base import ObjectStore, StoredObject, check_key

log = logging.getLogger(__name__)

MB = 1024 * 1024
# DeleteObjects takes at most this many keys per call.
DELETE_BATCH = 1000
# SigV4 presigned URLs cannot outlive seven days.
PRESIGN_LIMIT = 7 * 24 * 3600

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "PriorRequestNotComplete",
        "OperationAborted",
    }
)
# Network trouble (connect, TLS, timeouts, a body cut short) and corrupted transfers may pass.
_RETRYABLE_BOTO = (
    BotoConnectionError,
    HTTPClientError,
    ConnectionClosedError,
    ResponseStreamingError,
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Store(ObjectStore):
    """Objects under ``s3://bucket/prefix``; keys are relative to the prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str = "",
        region: str = "us-east-1",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        multipart_threshold: int = 16 * MB,
        multipart_chunksize: int = 16 * MB,
        max_concurrency: int = 4,
        page_size: int = 1000,
    ) -> None:
        if not _BUCKET.match(bucket):
            raise InvalidRequest(f"invalid S3 bucket name {bucket!r}", field="NARRATOR_STORAGE_URL")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        config = Config(
            region_name=region or None,
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # "standard" retries 5xx, throttling and connection errors with jittered
            # backoff, bounded by max_attempts (first call included).
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            # MinIO and moto serve buckets by path; AWS prefers virtual hosts.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        # One session per store: boto3 sessions are not thread-safe, clients are.
        session = boto3.session.Session()
        self.client: Any = session.client("s3", endpoint_url=endpoint_url or None, config=config)
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
        )

    @classmethod
    def from_url(cls, url: str, settings: Settings, **options: Any) -> S3Store:
        """``s3://bucket`` or ``s3://bucket/prefix``; ``options`` go to the constructor."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.hostname or parsed.username or parsed.password:
            raise InvalidRequest(f"not an S3 URL: {_redact_url(url)}", field="NARRATOR_STORAGE_URL")
        return cls(
            parsed.netloc,
            parsed.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            **options,
        )

    # -- keys ---------------------------------------------------------------

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_prefix(self, prefix: str) -> str:
        # A prefix is a folder, as in FileStore: "jobs/a" must not match "jobs/ab/…".
        if not prefix:
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(prefix.rstrip("/")) + "/"

    # -- operations ---------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        full = self._key(key)
        extra = {"ContentType": content_type} if content_type else {}
        with _translated("put", key):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, **extra)
        log.debug("s3 put", extra={"key": key, "bytes": len(data)})

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        full = self._key(key)
        extra = {"ContentType": content_type} if content_type else None
        with _translated("put", key):
            # Managed transfer: multipart above the threshold, streamed from disk.
            self.client.upload_file(str(path), self.bucket, full, ExtraArgs=extra, Config=self.transfer_config)
        log.debug("s3 put file", extra={"key": key})

    def get_bytes(self, key: str) -> bytes:
        full = self._key(key)
        with _translated("get", key):
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            data: bytes = response["Body"].read()
        return data

    def get_file(self, key: str, path: Path) -> None:
        full = self._key(key)
        with _translated("get", key):
            # s3transfer writes beside the target and renames: no half files.
            self.client.download_file(self.bucket, full, str(path), Config=self.transfer_config)

    def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            with _translated("head", key):
                self.client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            # HEAD has no body: a missing bucket also looks like a missing key here.
            return False
        return True

    def size(self, key: str) -> int:
        with _translated("head", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        return int(head["ContentLength"])

    def list(self, prefix: str) -> list[str]:
        return sorted(item.key for item in self.list_objects(prefix))

    def delete(self, key: str) -> None:
        full = self._key(key)
        with _translated("delete", key):
            # S3 answers 204 for a key that is not there: idempotent by design.
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        full = self._list_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size})
        # A generator: a bucket of millions of objects is walked a page at a time, never held whole.
        with _translated("list", prefix or "/"):
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"]
                    if not name.endswith("/"):  # console-made "folder" markers
                        yield StoredObject(name[strip:], int(item["Size"]), item["LastModified"].timestamp())

    def delete_many(self, keys: Iterable[str]) -> int:
        count = 0
        keys = iter(keys)
        while batch := list(islice(keys, DELETE_BATCH)):
            self._delete_batch(batch)
            count += len(batch)
        return count

    def _delete_batch(self, keys: Sequence[str]) -> None:
        objects = [{"Key": self._key(key)} for key in keys]
        where = f"{keys[0]} (+{len(keys) - 1} more)" if len(keys) > 1 else keys[0]
        with _translated("delete", where):
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        # DeleteObjects answers 200 and lists the keys it could not delete, one error each.
        errors = answer.get("Errors") or ()
        if errors:
            first = errors[0]
            raise translate(_per_key_error(first), "delete", str(first.get("Key", where)))

    def copy(self, src: str, dst: str) -> None:
        source, dest = self._key(src), self._key(dst)
        with _translated("copy", f"{src} -> {dst}"):
            # Managed copy stays server-side and switches to multipart copy for
            # objects over the threshold (CopyObject stops at 5 GB).
            self.client.copy(
                {"Bucket": self.bucket, "Key": source}, self.bucket, dest, Config=self.transfer_config
            )

    def presigned_url(self, key: str, expires: int) -> str:
        full = self._key(key)
        if not 1 <= expires <= PRESIGN_LIMIT:
            raise StoragePermanentError(f"presign {key}: expiry {expires}s outside 1..{PRESIGN_LIMIT}s")
        with _translated("presign", key):
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires
            )
        return url


# -- error translation --------------------------------------------------------


@contextmanager
def _translated(op: str, key: str) -> Iterator[None]:
    """Translate boto3/botocore/s3transfer errors raised inside the block."""
    try:
        yield
    except (ClientError, BotoCoreError, S3UploadFailedError, RetriesExceededError, TransferRetriesExceededError) as exc:
        raise translate(exc, op, key) from None
    except FileNotFoundError as exc:
        # A local path handed to put_file/get_file; naming the path is safe.
        raise StoragePermanentError(f"{op} {key}: local file not found: {exc.filename}") from None
    except OSError as exc:
        raise StorageError(f"{op} {key}: local I/O failed: {exc.strerror or type(exc).__name__}") from None


def translate(exc: BaseException, op: str, key: str) -> Exception:
    """Map one foreign exception to the narrator error tree."""
    inner = _unwrap(exc)
    where = f"{op} {key}"
    if isinstance(inner, ClientError):
        error = inner.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(inner.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        # "S3" in the message: a job's error must say that storage failed, not just how.
        detail = f"S3 answered {code or 'an error'} (HTTP {status or '?'})"
        message = _scrub(str(error.get("Message", "")))
        if message:
            detail = f"{detail}: {message}"
        if code in _NOT_FOUND:
            return ObjectNotFound(f"{where}: no such object")
        if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
            return StorageError(f"{where}: {detail}")
        return StoragePermanentError(f"{where}: {detail}")
    if isinstance(inner, (NoCredentialsError, PartialCredentialsError)):
        return StoragePermanentError(f"{where}: no usable AWS credentials")
    if isinstance(inner, _RETRYABLE_BOTO):
        return StorageError(f"{where}: {type(inner).__name__} talking to the storage endpoint")
    if isinstance(inner, (RetriesExceededError, TransferRetriesExceededError)):
        return StorageError(f"{where}: transfer retries exhausted")
    return StoragePermanentError(f"{where}: {type(inner).__name__}")


def _per_key_error(error: dict[str, Any]) -> ClientError:
    """One of DeleteObjects' per-key errors as the ClientError a single call would raise."""
    code = str(error.get("Code", ""))
    status = 500 if code in _RETRYABLE_CODES else 403 if code == "AccessDenied" else 400
    response: Any = {"Error": {"Code": code, "Message": str(error.get("Message", ""))},
                     "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "DeleteObjects")


def _unwrap(exc: BaseException) -> BaseException:
    # boto3 wraps upload ClientErrors in S3UploadFailedError (as implicit context)
    # and download stream failures in RetriesExceededError(last_exception).
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError | BotoCoreError):
        return exc.__context__
    last = getattr(exc, "last_exception", None)
    if isinstance(exc, (RetriesExceededError, TransferRetriesExceededError)) and isinstance(last, BaseException):
        return _unwrap(last) if isinstance(last, (ClientError, BotoCoreError)) else exc
    return exc


_SIGNED = re.compile(r"(?i)(X-Amz-(?:Credential|Signature|Security-Token)=)[^&\s\"']+")


def _scrub(text: str) -> str:
    """Service messages carry no secrets, but never echo a signature or token."""
    return _SIGNED.sub(r"\1…", text)[:300]


def _redact_url(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}{parsed.path}"

