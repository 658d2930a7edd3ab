"""SQS as the broker: what kombu's SQS transport leaves to narrator.

- Chords count their chunks in the result backend, and SQS is none: an SQS broker without
  ``NARRATOR_RESULT_BACKEND`` is refused where every entry point configures Celery
  (:func:`check`, from ``tasks/app.py`` ``configure``), instead of failing every job later.
- kombu sets a queue's visibility timeout only when it creates the queue, so a worker sets
  it on the queues it consumes as it starts (:func:`sync_visibility`): raising the chunk
  time limit then raises the timeout of queues that already exist.
- ``NARRATOR_SQS_QUEUES`` maps narrator's queues to existing queue URLs (kombu's
  ``predefined_queues``), for accounts where narrator may not create queues.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from celery.signals import celeryd_after_setup

from ..errors import ConfigurationError
from ..settings import Settings
from .names import CPU_QUEUE, GPU_QUEUE

log = logging.getLogger(__name__)

QUEUES_VARIABLE = "NARRATOR_SQS_QUEUES"
ATTRIBUTE = "VisibilityTimeout"
#: SQS refuses a visibility timeout above 12 hours.
MAX_VISIBILITY = 12 * 3600
#: Every process sends to both queues (the CPU worker's fan-out sends chunks to the GPU queue).
REQUIRED_QUEUES = (CPU_QUEUE, GPU_QUEUE)
_SQS_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
#: The queue-name translation of kombu.transport.SQS (CHARS_REPLACE_TABLE), which needs the sqs extra to import.
_KOMBU_NAME = {ord(c): "_" for c in "!\"#$%&'()*+,/:;<=>?@[\\]^`{|}~"} | {ord("."): "-"}

SET, KEPT, MISSING, DENIED, FAILED = "set", "kept", "missing", "denied", "failed"
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError"})
_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"})


def is_sqs(broker_url: str) -> bool:
    return broker_url.startswith("sqs://")


def check(settings: Settings) -> None:
    """Refuse settings an SQS broker cannot run with, naming the variable to change."""
    if settings.sqs_queues and not is_sqs(settings.broker_url):
        raise ConfigurationError("set, but NARRATOR_BROKER_URL is not sqs://", QUEUES_VARIABLE)
    if not is_sqs(settings.broker_url):
        return
    if not settings.effective_result_backend:
        raise ConfigurationError(
            "an SQS broker needs a result backend (a job's chunks are counted there): "
            "set NARRATOR_RESULT_BACKEND=redis://…",
            "NARRATOR_RESULT_BACKEND",
        )
    queue_urls(settings.sqs_queues)


def transport_options(settings: Settings, visibility: int) -> dict[str, Any]:
    """kombu's SQS ``broker_transport_options`` for ``settings``."""
    if visibility > MAX_VISIBILITY:
        most = (MAX_VISIBILITY - 60) // 2
        raise ConfigurationError(
            f"{settings.chunk_time_limit} s makes a visibility timeout of {visibility} s, over SQS's "
            f"{MAX_VISIBILITY} s: at most {most} with an SQS broker",
            "NARRATOR_CHUNK_TIME_LIMIT",
        )
    options: dict[str, Any] = {"visibility_timeout": visibility, "region": settings.s3_region}
    urls = queue_urls(settings.sqs_queues)
    if urls:
        options["predefined_queues"] = predefined_queues(urls)
    return options


def queue_urls(entries: Iterable[str]) -> dict[str, str]:
    """``queue=URL`` entries as a map; empty, or one URL for each of narrator's queues."""
    urls: dict[str, str] = {}
    for entry in entries:
        name, _, url = (part.strip() for part in entry.partition("="))
        if not name or not url:
            raise ConfigurationError(f"{entry!r} is not queue=URL", QUEUES_VARIABLE)
        if name not in REQUIRED_QUEUES:
            raise ConfigurationError(f"unknown queue {name!r} (narrator's: {', '.join(REQUIRED_QUEUES)})",
                                     QUEUES_VARIABLE)
        if name in urls:
            raise ConfigurationError(f"{name} is given twice", QUEUES_VARIABLE)
        urls[name] = _checked_url(name, url)
    missing = [name for name in REQUIRED_QUEUES if name not in urls]
    if urls and missing:
        raise ConfigurationError(f"no URL for {', '.join(missing)} (every narrator queue needs one)",
                                 QUEUES_VARIABLE)
    return urls


def _checked_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    queue = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name}: {url!r} is not an http(s) queue URL", QUEUES_VARIABLE)
    if not _SQS_NAME.fullmatch(queue):
        # kombu takes a URL ending in .fifo for a FIFO queue, which narrator's queue names cannot be.
        raise ConfigurationError(f"{name}: {url!r} does not end in a standard queue's name", QUEUES_VARIABLE)
    return url


def sqs_name(queue: str) -> str:
    """The SQS queue name kombu uses for ``queue`` (SQS allows no dots)."""
    return queue.translate(_KOMBU_NAME)


def predefined_queues(urls: Mapping[str, str]) -> dict[str, dict[str, str]]:
    # kombu looks predefined queues up by the SQS name when it sends, acknowledges and polls,
    # and by narrator's own name in its blocking receive and purge: each URL goes under both.
    return {key: {"url": url} for name, url in urls.items() for key in {name, sqs_name(name)}}


class SQSClient(Protocol):
    """The calls :func:`sync_visibility` makes (a boto3 SQS client has them)."""

    def list_queues(self, **kwargs: Any) -> Any: ...
    def get_queue_attributes(self, **kwargs: Any) -> Any: ...
    def set_queue_attributes(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class QueueTimeout:
    """What a worker found and did about one queue's visibility timeout as it started."""

    queue: str
    url: str
    target: int
    outcome: str
    before: int | None = None
    detail: str = ""


def sync_visibility(client: SQSClient, queue: str, url: str, target: int) -> QueueTimeout:
    """Give the queue at ``url`` (``""``: find it by name) the visibility timeout ``target``."""
    try:
        url = url or _find(client, sqs_name(queue))
        if not url:
            return QueueTimeout(queue, sqs_name(queue), target, MISSING)
        before = _read(client, url)
        if before == target:
            return QueueTimeout(queue, url, target, KEPT, before)
        client.set_queue_attributes(QueueUrl=url, Attributes={ATTRIBUTE: str(target)})
        return QueueTimeout(queue, url, target, SET, before)
    except ClientError as exc:
        return QueueTimeout(queue, url, target, _outcome_of_error(exc), detail=str(exc))
    except BotoCoreError as exc:
        return QueueTimeout(queue, url, target, FAILED, detail=str(exc))


def outcome_of(code: str, status: int = 0) -> str:
    """The outcome an SQS error (its code and HTTP status) means for :func:`sync_visibility`."""
    # A 403 whose body botocore could not read has the status for its code (moto answers so).
    if code in _DENIED_CODES or (status == 403 and code in ("", "403")):
        return DENIED
    if code in _MISSING_CODES:
        return MISSING
    return FAILED


def _outcome_of_error(exc: ClientError) -> str:
    response = exc.response
    return outcome_of(str(response.get("Error", {}).get("Code", "")),
                      int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)))


def _find(client: SQSClient, name: str) -> str:
    urls = client.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    return next((url for url in urls if url.rstrip("/").rsplit("/", 1)[-1] == name), "")


def _read(client: SQSClient, url: str) -> int | None:
    """The queue's timeout; None when this identity may not read it (setting it may still be allowed)."""
    try:
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=[ATTRIBUTE])["Attributes"]
    except ClientError as exc:
        if _outcome_of_error(exc) != DENIED:
            raise
        return None
    return int(attributes[ATTRIBUTE])


def report(result: QueueTimeout, predefined: bool) -> tuple[int, str]:
    """The log level and line for ``result``; raises when the worker must not start."""
    where = f"SQS queue {result.queue} ({result.url})"
    if result.outcome == SET:
        return logging.INFO, f"{where}: {ATTRIBUTE} {result.before} -> {result.target} s"
    if result.outcome == KEPT:
        return logging.INFO, f"{where}: {ATTRIBUTE} is {result.target} s"
    if result.outcome == MISSING and predefined:
        raise ConfigurationError(f"{where} does not exist", QUEUES_VARIABLE)
    if result.outcome == MISSING:
        return logging.INFO, f"{where} does not exist yet: kombu creates it with {ATTRIBUTE}={result.target}"
    fix = (f"set the queue attribute {ATTRIBUTE}={result.target} yourself (aws sqs set-queue-attributes "
           f"--queue-url {result.url} --attributes {ATTRIBUTE}={result.target}), or a chunk still running "
           f"after its current timeout is handed to a second worker")
    if result.outcome == DENIED:
        return logging.WARNING, f"{where}: not allowed to set {ATTRIBUTE} ({result.detail}); {fix}"
    return logging.WARNING, f"{where}: could not set {ATTRIBUTE} ({result.detail}); {fix}"


@celeryd_after_setup.connect
def _sync_at_start(sender: str = "", instance: Any = None, **_: Any) -> None:
    """Worker main process, before it consumes: its queues' visibility timeout follows the chunk limit."""
    conf = instance.app.conf
    if not is_sqs(str(conf.broker_url or "")):
        return
    options = conf.broker_transport_options
    predefined: dict[str, dict[str, str]] = options.get("predefined_queues") or {}
    names = sorted(instance.app.amqp.queues.consume_from)
    try:
        for result in _sync_all(instance.app, names, int(options["visibility_timeout"]), predefined):
            level, line = report(result, bool(predefined))
            log.log(level, line, extra={"queue": result.queue, "outcome": result.outcome})
    except ConfigurationError as exc:
        _refuse_to_start(sender, str(exc))


def _sync_all(
    app: Any, names: list[str], target: int, predefined: Mapping[str, Mapping[str, str]]
) -> list[QueueTimeout]:
    try:
        with app.connection_for_write() as connection:
            channel = connection.channel()  # kombu's own client: its credentials, endpoint, region
            try:
                return [sync_visibility(channel.sqs(queue=sqs_name(name)), name,
                                        predefined.get(name, {}).get("url", ""), target) for name in names]
            finally:
                channel.close()
    except (BotoCoreError, ClientError, OSError) as exc:
        return [QueueTimeout(name, sqs_name(name), target, FAILED, detail=str(exc)) for name in names]


def _refuse_to_start(hostname: str, reason: str) -> None:
    from ..ops import worker_state
    from .context import current

    log.critical("worker not started: %s", reason)
    ready_file = current().settings.ready_file
    if ready_file:
        try:
            worker_state.write(Path(ready_file), worker_state.FAILED, hostname, error=reason)
        except OSError:
            pass  # the reason is in the log line above
    raise SystemExit(1)
