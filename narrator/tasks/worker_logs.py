"""A Celery worker's every line through narrator's logging (ops/logs.py): main process and pool.

Left to itself, Celery's main process logs through its own formatter (no time in JSON, no
fields), prints a banner of a dozen plain lines on stdout at start and ``worker: Warm
shutdown`` at the end, and a warning printed before any logging exists (running as root)
goes to stderr as it is. A receiver of ``setup_logging`` makes Celery configure nothing
itself; the others below take the plain writes over, so that with ``NARRATOR_LOG_JSON=true``
every line is one JSON object, and in plain mode every line starts with its time.

Pool processes keep the set-up they inherit at fork, and tasks/worker.py sets it again in
each one (``worker_process_init``) before its first task.
"""

from __future__ import annotations

import logging
from typing import Any

import celery
from celery import signals
from celery.exceptions import TaskRevokedError
from celery.utils.log import get_multiprocessing_logger, mlevel

from ..errors import JobCancelled
from ..ops import logs
from .app import app
from .context import current

log = logging.getLogger(__name__)

# A cancel makes a job's running chunks raise JobCancelled and revokes its queued tasks; Celery then
# logs the chord that fails after them as an ERROR with a traceback, for what the user asked for.
logs.expect(JobCancelled, TaskRevokedError)


def _configure(loglevel: int | str | None) -> None:
    handler = logs.setup_logging(
        "worker", json_logs=current().settings.log_json, level=mlevel(loglevel) if loglevel else None)
    # Celery's own set-up gives billiard's logger (which does not propagate) a handler at ERROR.
    pool_log = get_multiprocessing_logger()
    if pool_log is not None:
        pool_log.handlers[:] = [handler]
        pool_log.setLevel(logging.ERROR)
    logging.captureWarnings(True)


@signals.celeryd_init.connect
def _before_worker(instance: Any = None, options: Any = None, **_: Any) -> None:
    """Main process, first thing: log as narrator does, and no banner (its facts are one record below).

    Before Celery's own set-up, so the warning it gives a worker run as root is a record too.
    """
    if instance is not None:
        instance.quiet = True
    _configure((options or {}).get("loglevel"))


@signals.setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Answering this signal is what keeps Celery from configuring the root logger itself."""
    _configure(loglevel)


@signals.celeryd_after_setup.connect
def _starting(sender: str = "", instance: Any = None, **_: Any) -> None:
    """The banner's facts as one record; then print() and stray writes become records too, pool included."""
    if instance is None:
        return
    queues = app.amqp.queues
    with app.connection() as broker:
        broker_url = broker.as_uri()
    log.info("worker starting", extra={
        "node": sender,
        "queues": sorted(getattr(queues, "consume_from", None) or queues),
        "concurrency": instance.concurrency,
        # as_uri() masks a password but shows the user, an SQS access key id for one.
        "broker": logs.without_credentials(broker_url),
        "results": logs.without_credentials(app.backend.as_uri()),
        "celery": celery.__version__,
    })
    if app.conf.worker_redirect_stdouts:
        # Celery skips this when logging is not its own; the environment it sets tells the pool too.
        app.log.redirect_stdouts(app.conf.worker_redirect_stdouts_level)


@signals.worker_ready.connect
def _quiet_warm_shutdown(sender: Any = None, **_: Any) -> None:
    """SIGTERM (docker stop, compose, Kubernetes) without Celery's plain ``worker: Warm shutdown`` line.

    Celery installs the handler after the start-up signals; the same handler again, silent, and
    :func:`_stopping` says it instead. (Ctrl+C and SIGQUIT keep their prompts: someone is at a terminal.)
    """
    import celery.apps.worker as program  # only a worker's main process needs it

    controller = getattr(sender, "controller", None)
    if controller is not None:
        # Not in celery-types' stubs: Celery's own installer, as its worker calls it.
        install = getattr(program, "install_worker_term_handler")  # noqa: B009
        install(controller, verbose=False)


@signals.worker_shutting_down.connect
def _stopping(sig: str = "", how: str = "", exitcode: int = 0, **_: Any) -> None:
    log.info("worker shutting down", extra={"how": how.lower(), "signal": sig})
