"""Logging set-up for the entry points: human lines, or JSON with structured fields."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, Literal

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("narrator_log_fields", default=None)


def bind(**fields: Any) -> None:
    """Attach fields (job id, chunk, model, worker) to every record logged in this context."""
    _fields.set({**(_fields.get() or {}), **fields})


def clear() -> None:
    _fields.set({})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class FieldsFormatter(logging.Formatter):
    """``message key=value ...`` so the structured fields show in plain logs too."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STD)
        return f"{base} {fields}" if fields else base


#: Loggers that say too much at INFO for any entry point. botocore at DEBUG logs request headers,
#: which carry the access key id; httpx at INFO logs whole URLs, voice URLs with their tokens
#: included; Celery's task tracer logs every task's arguments and return value (requests, texts,
#: voices, results), in-process as in a worker.
QUIET = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore", "celery.app.trace")

Mode = Literal["cli", "runpod", "worker"]


def setup_logging(mode: Mode = "cli", *, verbose: bool = False, json_logs: bool = False) -> None:
    """Logging for an entry point, the one set-up every entry point calls, with its ``mode``.

    ``cli``: warnings, or progress details too with ``verbose`` (``narrator -v``). ``runpod``
    (the RunPod handler) and ``worker`` (a Celery pool process, before its first task): INFO.
    A pool process writes to the real stderr: Celery has made its ``sys.stderr`` a proxy that
    logs to the root logger, and a handler writing to it loops back into the proxy, whose
    recursion guard drops every record. (A worker's main process keeps Celery's own logging,
    whose formatter prints messages only: Celery's records carry task arguments as fields.)
    """
    stream = sys.stderr
    if mode == "worker" and sys.__stderr__ is not None:
        stream = sys.__stderr__
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_logs else FieldsFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose or mode != "cli" else logging.WARNING)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
