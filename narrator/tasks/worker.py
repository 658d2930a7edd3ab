"""Worker entry point: ``celery -A narrator.tasks.worker worker -Q narrator.cpu``.

Reads the settings from the environment once, here, and configures the app.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery.signals import celeryd_after_setup, task_postrun, task_prerun, worker_process_init

from .. import logs
from ..engines import get_engine
from ..errors import ModelError
from ..logs import setup_logging
from ..settings import Settings
from . import (
    metrics,  # noqa: F401 - serves NARRATOR_METRICS_PORT
    recovery,
    runtime,
    waiters,
)
from .app import app, configure

log = logging.getLogger(__name__)

settings = Settings.from_env()
configure(settings)


@celeryd_after_setup.connect
def _restore_orphans(sender: str = "", **_: Any) -> None:
    """Before consuming: requeue what this node's previous life was running when it died."""
    recovery.restore_orphans(app, sender)


@worker_process_init.connect
def _prepare_process(**_: Any) -> None:
    """Load the models (and wait for ComfyUI) before this process takes its first task."""
    setup_logging(verbose=True, json_logs=settings.log_json)
    _log_to_real_stderr()
    # At INFO, Celery logs every task's arguments and return value (requests, texts, voices)
    # and httpx every request's URL (a voice URL may carry a token).
    for chatty in ("celery.app.trace", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    registry = runtime.current().registry
    for name in settings.warmup_models:
        spec = registry.get(name)
        if spec is None:
            raise ModelError(f"NARRATOR_WARMUP_MODELS names unknown model {name!r}")
        get_engine(spec, settings).warm_up()
        log.info("warmed up", extra={"model": name})


def _log_to_real_stderr() -> None:
    # Celery has made this child's sys.stderr a proxy that logs to the root logger: a handler
    # writing to it loops back into the proxy, whose recursion guard drops every record.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr and sys.__stderr__:
            handler.setStream(sys.__stderr__)


@task_prerun.connect
def _bind_log_fields(task: Any = None, task_id: str = "", args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """Every log line of a task carries its job id, chunk index and worker."""
    args = list(args or [])
    kwargs = dict(kwargs or {})
    job_id = kwargs.get("job_id") or (args[0] if args and isinstance(args[0], str) else None)
    fields: dict[str, Any] = {"task": getattr(task, "name", ""), "worker": getattr(task.request, "hostname", "")}
    if job_id:
        fields["job_id"] = job_id
    if getattr(task, "name", "") == "narrator.synthesize_chunk" and len(args) > 1:
        fields["chunk"] = args[1]
    logs.clear()
    logs.bind(**fields)


@task_postrun.connect
def _clear_log_fields(**_: Any) -> None:
    logs.clear()


@task_postrun.connect
def _forget_waiters(**_: Any) -> None:
    """A worker never waits on results: drop the waiters a fan-out registered (see waiters.py)."""
    waiters.forget_waiters(app.backend)


__all__ = ["app"]
