"""Worker entry point: ``celery -A narrator.tasks.worker worker -Q narrator.cpu``.

Reads the settings from the environment once, here, and configures the app.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.signals import (
    celeryd_after_setup,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from ..engines import get_engine, new_engine
from ..errors import ModelError, NarratorError
from ..models import ModelSpec
from ..ops import logs, worker_state
from ..ops.logs import setup_logging
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


#: Exit status of a worker whose warm-up failed (Celery's own EX_FAILURE).
EXIT_WARM_UP_FAILED = 1


@dataclass
class _Node:
    """This worker's main process, as the signals below learn about it."""

    hostname: str = ""
    failed: bool = False


_node = _Node()


@worker_init.connect
def _starting(sender: Any = None, **_: Any) -> None:
    """Main process, first thing: not ready (a file left by an earlier life says otherwise)."""
    _node.hostname = str(getattr(sender, "hostname", "") or "")
    try:
        _mark(worker_state.STARTING)
    except OSError as exc:
        _fail(f"cannot write NARRATOR_READY_FILE {settings.ready_file}: {exc}")


@celeryd_after_setup.connect
def _warm_up_before_fork(sender: str = "", **_: Any) -> None:
    """Main process, before the pool starts: a worker that cannot warm up exits instead of taking work."""
    try:
        warm_up_main(settings)
    except NarratorError as exc:
        _fail(f"warm-up failed: {exc}")


@celeryd_after_setup.connect
def _restore_orphans(sender: str = "", **_: Any) -> None:
    """Before consuming: requeue what this node's previous life was running when it died."""
    recovery.restore_orphans(app, sender)


@worker_ready.connect
def _ready(**_: Any) -> None:
    """Warmed up and consuming: ``narrator health`` says so from now on."""
    _mark(worker_state.READY)


@worker_shutting_down.connect
def _stopping(**_: Any) -> None:
    """A warm shutdown stops consuming at once: not ready any more, though a chunk may still finish."""
    _unmark()


@worker_shutdown.connect
def _stopped(**_: Any) -> None:
    _unmark()


def warm_up_main(settings: Settings) -> None:
    """Check ``NARRATOR_WARMUP_MODELS`` and have ComfyUI load its models, in the main process.

    Runs before the pool forks, so only what survives a fork happens here: a ComfyUI
    model is warmed up through an engine of its own, closed afterwards (the server keeps
    the model loaded). The embedded engine (onnxruntime, which does not survive a fork)
    loads in each pool process, as every model's per-process warm-up does.
    """
    specs: list[ModelSpec] = []
    registry = runtime.current().registry
    for name in settings.warmup_models:
        spec = registry.get(name)
        if spec is None:
            known = ", ".join(sorted(s.name for s in registry)) or "none"
            raise ModelError(f"NARRATOR_WARMUP_MODELS names unknown model {name!r} (known: {known})")
        specs.append(spec)
    for spec in specs:
        if spec.engine != "comfyui":
            continue
        log.info("warming up %s", spec.name, extra={"model": spec.name, "comfy_url": settings.comfy_url})
        engine = new_engine(spec, settings)
        try:
            engine.warm_up()
        finally:
            engine.close()
        log.info("warmed up %s", spec.name, extra={"model": spec.name})


def exit_code() -> int:
    """The status a worker run in this process ends with (for ``narrator worker``)."""
    return EXIT_WARM_UP_FAILED if _node.failed else 0


def _fail(reason: str) -> None:
    """One line saying why, the failure in the ready file, and a non-zero exit."""
    log.critical("worker not started: %s", reason)
    _node.failed = True
    if settings.ready_file:
        try:
            worker_state.write(Path(settings.ready_file), worker_state.FAILED, _node.hostname, error=reason)
        except OSError:
            pass  # the reason is in the log line above
    raise SystemExit(EXIT_WARM_UP_FAILED)


def _mark(state: str) -> None:
    if settings.ready_file:
        worker_state.write(Path(settings.ready_file), state, _node.hostname)


def _unmark() -> None:
    # A failed start leaves its reason in the file for whoever waits on it.
    if settings.ready_file and not _node.failed:
        worker_state.remove(Path(settings.ready_file))


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
