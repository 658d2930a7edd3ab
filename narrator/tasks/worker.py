"""Worker entry point: ``celery -A narrator.tasks.worker worker -Q narrator.cpu``.

Reads the settings from the environment once, here: they make the process's context
(tasks/context.py) and configure the task app, both once.
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

from ..errors import NarratorError
from ..ops import logs, worker_state
from ..ops.logs import setup_logging
from ..settings import Settings
from . import (
    metrics,  # noqa: F401 - serves NARRATOR_METRICS_PORT
    recovery,
    waiters,
    worker_logs,  # noqa: F401 - Celery's logging signals: every line a worker writes
)
from .app import app, configure
from .context import init
from .names import CHUNK_TASK, job_id_of

log = logging.getLogger(__name__)

#: This process's context (tasks/context.py) and Celery app: made here, once, from the environment.
context = init(Settings.from_env())
settings = context.settings
try:
    if configure(settings) is not app:
        raise RuntimeError("the task app is configured for another broker: a worker needs a process of its own")
except NarratorError as exc:  # a setting that cannot work (an SQS broker with no result backend): one line
    print(f"narrator: {exc}", file=sys.stderr)
    raise SystemExit(1) from None


#: Exit status of a worker whose warm-up failed (Celery's own EX_FAILURE).
EXIT_WARM_UP_FAILED = 1


@dataclass
class _Node:
    """This worker's main process, as the signals below learn about it."""

    hostname: str = ""
    failed: bool = False
    alone: bool = False
    """No live worker answered to this node name when asked at start."""


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
def _refuse_a_name_in_use(sender: str = "", **_: Any) -> None:
    """First, before warm-up and recovery: a live worker with this node name would have its tasks requeued."""
    in_use = recovery.name_in_use(app, sender)
    _node.alone = in_use is False
    if in_use:
        _fail(f"a live worker already answers to the node name {sender}: give this one another name "
              "(narrator worker --name NAME, NARRATOR_WORKER_NAME, or celery's -n)")


@celeryd_after_setup.connect
def _warm_up_before_fork(sender: str = "", **_: Any) -> None:
    """Main process, before the pool starts: a worker that cannot warm up exits instead of taking work."""
    try:
        context.warm_up(before_fork=True)
    except NarratorError as exc:
        _fail(f"warm-up failed: {exc}")


@celeryd_after_setup.connect
def _restore_orphans(sender: str = "", **_: Any) -> None:
    """Before consuming: requeue what this node's previous life was running when it died."""
    # Unless the broker said no live worker has this name, a "previous life" may be alive: leave it be.
    if _node.alone:
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
    setup_logging("worker", json_logs=settings.log_json, level=logging.getLogger().level)  # --loglevel stands
    context.warm_up()


@task_prerun.connect
def _bind_log_fields(task: Any = None, task_id: str = "", args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """Every log line of a task carries its job id, chunk index and worker."""
    name = getattr(task, "name", "")
    fields: dict[str, Any] = {"task": name, "worker": getattr(task.request, "hostname", "")}
    job_id = job_id_of(name, task_id, args, kwargs)
    if job_id:
        fields["job_id"] = job_id
    if name == CHUNK_TASK and args and len(args) > 1:
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
