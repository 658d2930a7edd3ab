"""Logging set-up for the entry points: human lines, or JSON with structured fields.

Every record carries its time (UTC, ISO 8601 to the millisecond) in either format, except a
command's own warnings to the person at the terminal (``cli`` mode without JSON).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, Literal

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("narrator_log_fields", default=None)


def bind(**fields: Any) -> None:
    """Attach fields (job id, chunk, model, worker) to every record logged in this context."""
    _fields.set({**(_fields.get() or {}), **fields})


def clear() -> None:
    _fields.set({})


def utc_time(created: float) -> str:
    """``2026-11-29T11:47:34.123Z``: sortable, and the same in every process and zone."""
    seconds, millis = divmod(round(created * 1000), 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


#: What of Celery's ``data`` field a line may show. Its records carry task arguments (requests,
#: texts, voices) and return values there: a worker's "Task ... received" at INFO, a failure's.
CELERY_DATA = ("id", "name", "hostname", "eta", "runtime", "description")


def public_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record's structured fields as a line shows them: extras, without task arguments or results."""
    fields = {k: v for k, v in vars(record).items() if k not in _STD}
    data = fields.get("data")
    if isinstance(data, dict):
        fields["data"] = {k: data[k] for k in CELERY_DATA if k in data}
    return fields


def without_credentials(url: str) -> str:
    """``url`` with whatever precedes an ``@`` (user, password, an access key) shown as ``***``."""
    return re.sub(r"://[^@/\s]*@", "://***@", url)


def caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` is, or was raised from or while handling, one of ``kinds``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


_expected: list[type[BaseException]] = []


def expect(*kinds: type[BaseException]) -> None:
    """Errors that are part of normal operation (a user's cancel): never logged as a warning or an error.

    The code that meets one logs it at INFO itself; third-party records that carry one (Celery's
    "Chord ... raised" after a cancelled chunk, with its traceback) are dropped. Registered once
    per process, before it forks: every handler :func:`setup_logging` makes applies them.
    """
    _expected.extend(kind for kind in kinds if kind not in _expected)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class ExpectedFilter(logging.Filter):
    """Drops warnings and errors whose exception is an expected one: ``kinds``, else those of :func:`expect`."""

    def __init__(self, kinds: tuple[type[BaseException], ...] | None = None) -> None:
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        kinds = self.kinds if self.kinds is not None else tuple(_expected)
        if record.levelno < logging.WARNING or not record.exc_info or not kinds:
            return True
        return not caused_by(record.exc_info[1], kinds)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, one line whatever the message holds."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(public_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class FieldsFormatter(logging.Formatter):
    """``message key=value ...`` so the structured fields show in plain logs too."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record.created)

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in public_fields(record).items())
        line = f"{base} {fields}" if fields else base
        if self.usesTime():
            # A traceback or a multi-line warning: each of its lines starts with the time too, indented.
            line = line.replace("\n", f"\n{utc_time(record.created)}   ")
        return line


#: Loggers that say too much at INFO for any entry point. botocore at DEBUG logs request headers,
#: which carry the access key id; httpx at INFO logs whole URLs, voice URLs with their tokens
#: included; Celery's task tracer logs every task's arguments and return value (requests, texts,
#: voices, results), in-process as in a worker.
QUIET = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore", "celery.app.trace")

Mode = Literal["cli", "runpod", "worker"]

PLAIN = "%(levelname)s %(name)s: %(message)s"
PLAIN_TIMED = "%(asctime)s " + PLAIN


def setup_logging(
    mode: Mode = "cli", *, verbose: bool = False, json_logs: bool = False, level: int | None = None
) -> logging.Handler:
    """Logging for an entry point, the one set-up every entry point calls, with its ``mode``; its handler.

    ``cli``: warnings, or progress details too with ``verbose`` (``narrator -v``). ``runpod``
    (the RunPod handler) and ``worker`` (a Celery worker, main process and pool processes):
    INFO, or ``level`` (a worker's ``--loglevel``). A worker writes to the real stderr: Celery
    makes ``sys.stdout``/``sys.stderr`` proxies that log to the root logger (tasks/worker_logs.py),
    and a handler writing to one would loop back into it, whose recursion guard drops every record.
    """
    stream = sys.stderr
    if mode == "worker" and sys.__stderr__ is not None:
        stream = sys.__stderr__
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_logs else FieldsFormatter(PLAIN if mode == "cli" else PLAIN_TIMED))
    handler.addFilter(ContextFilter())
    handler.addFilter(ExpectedFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level is not None else logging.INFO if verbose or mode != "cli" else logging.WARNING)
    quiet(QUIET)
    return handler


def quiet(names: Iterable[str]) -> None:
    """Warnings and errors only from ``names``, whatever the root level (DEBUG included)."""
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
