"""Logging set-up for the entry points: human lines, or JSON with structured fields."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

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


def setup_logging(verbose: bool = False, json_logs: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else FieldsFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # botocore at DEBUG logs request headers, which carry the access key id.
    # httpx at INFO logs whole URLs, voice URLs with their tokens included.
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
