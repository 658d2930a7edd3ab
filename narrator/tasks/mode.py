"""How a job runs: in this process, or through a broker to the workers. Chosen once, from settings.

This is the one place the two differ; everything else asks the run mode of its context
(:attr:`narrator.tasks.context.Context.mode`) instead of asking which mode it is in:

========================  ===============================  =====================================
                          :class:`InProcess` (no broker)   :class:`Brokered`
========================  ===============================  =====================================
a job starts              its tasks called in a thread     ``send_task`` of the entry task to
                          of this process (no Celery)      the CPU queue
progress and failure      storage only (``backend`` is     storage, and the job id's Celery
reach waiters             None)                            result (PROGRESS, FAILURE)
retries                   none: nothing could wait out     :class:`~.retry.RetryPolicy` of
                          a countdown                      ``NARRATOR_CHUNK_MAX_RETRIES``
cancel                    the cancel mark, and this        the cancel mark, and a revoke of the
                          process's engines interrupted    job's queued tasks
ready for jobs            its models loaded here           its GPU worker's ready file says so
(:meth:`get_ready`)                                        (``NARRATOR_READY_FILE``, if set)
========================  ===============================  =====================================
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from celery import Celery

from ..errors import NarratorError, RetryableError
from ..ops.logs import without_credentials
from .app import configure
from .fanout_order import FanoutOrder
from .names import CPU_QUEUE, JOB_TASK
from .retry import NO_RETRIES, RetryPolicy

if TYPE_CHECKING:
    from ..job.admission import Admitted
    from ..jobs import JobHandle
    from .context import Context

log = logging.getLogger(__name__)

#: A producer must not hang on a dead broker: three quick tries, then a RetryableError.
SEND_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


class RunMode(Protocol):
    name: str
    retry: RetryPolicy
    """How often, and after how long, a task that failed with a retryable error runs again."""
    checks_here: bool
    """Whether a chunk is checked (``verify``) where it was synthesized; else a CPU worker checks it."""

    @property
    def order(self) -> FanoutOrder | None:
        """Where jobs wait to fan out in the order they were submitted (tasks/fanout_order.py); None: no order."""

    @property
    def backend(self) -> Any | None:
        """The Celery result backend tasks report progress and failure to and waiters read; None: storage only."""

    def start(self, handle: JobHandle, kwargs: dict[str, Any], admitted: Admitted | None = None) -> None:
        """Start the job ``handle`` names with the entry task's ``kwargs`` (``admitted``: the producer's admission)."""

    def job_state(self, task_id: str) -> str | None:
        """The job's entry task's state in the result backend; None when there is none."""

    def cancel(self, handle: JobHandle) -> None:
        """Stop what runs of the job beyond its cancel mark (which the caller has written)."""

    def get_ready(self, warm_up: bool = True) -> None:
        """Return once whoever synthesizes this process's jobs is ready (a long-lived producer's start)."""


def run_mode(context: Context) -> RunMode:
    """The run mode of ``context``'s settings: through the broker when one is configured."""
    if context.settings.eager:
        return InProcess(context)
    return Brokered(context, configure(context.settings))


class InProcess:
    """No broker: the job's tasks run one after another in a thread of this process (:func:`run_here`)."""

    name = "in-process"
    retry = NO_RETRIES
    checks_here = True
    backend = None
    order = None  # one job's chunks at a time, in this thread

    def __init__(self, context: Context) -> None:
        self.context = context

    def start(self, handle: JobHandle, kwargs: dict[str, Any], admitted: Admitted | None = None) -> None:
        from ..job.admission import hand_over
        from .context import bound

        if admitted is not None:
            # The job stages in this process: stage-input takes this admission instead of admitting again.
            hand_over(handle.id, admitted)

        def run() -> None:
            from .pipeline import record_failure

            with bound(self.context):
                try:
                    run_here(handle.id, **kwargs)
                except Exception as exc:
                    if not isinstance(exc, NarratorError):
                        log.exception("job crashed", extra={"job_id": handle.id})
                    handle._thread_error = exc
                    # Another process (``narrator status``) sees the failure in storage, as from a worker.
                    record_failure(handle.id, exc, "in-process", handle.id)

        handle._thread = threading.Thread(target=run, name=f"narrator-job-{handle.id[:8]}", daemon=True)
        handle._thread.start()

    def job_state(self, task_id: str) -> str | None:
        return None

    def cancel(self, handle: JobHandle) -> None:
        # The job runs in this process: interrupt its engines here.
        from ..engines import running_engines

        for engine in running_engines():
            engine.cancel(handle.id)

    def get_ready(self, warm_up: bool = True) -> None:
        """This process synthesizes: load its models (NARRATOR_WARMUP_MODELS, else the default model)."""
        if warm_up:
            settings = self.context.settings
            self.context.warm_up(settings.warmup_models or (settings.default_model,))


def run_here(job_id: str, request: dict[str, Any] | None = None, request_ref: str | None = None) -> dict[str, Any]:
    """A job's tasks, called in this thread in the order its canvas runs them through a broker.

    The entry task (``pipeline.job``) chains stage-input, the fan-out and upload; the fan-out
    (``pipeline.synthesize``) runs every chunk, then concatenate. No Celery here: a task
    called directly runs its body, and its first error ends the job.
    """
    from .context import current
    from .pipeline import concatenate, stage_input, synthesize_chunk, upload

    stage_input(job_id, request, request_ref)
    for entry in current().manifest(job_id).chunks:
        synthesize_chunk(job_id, entry.index)
    return upload(concatenate(job_id), job_id=job_id)


class Brokered:
    """A broker: the job's tasks run on the workers that consume its queues."""

    name = "broker"
    checks_here = False  # unless the GPU worker's recogniser runs on its GPU (verify.load.on_gpu)

    def __init__(self, context: Context, app: Celery) -> None:
        self.context = context
        self.app = app
        self.retry = RetryPolicy(context.settings.chunk_max_retries)
        self._order: FanoutOrder | None = None

    @property
    def order(self) -> FanoutOrder | None:
        """On a Redis broker, the order of fan-outs; other brokers have none."""
        url = self.context.settings.broker_url
        if self._order is None and url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            self._order = FanoutOrder(client)
        return self._order

    @property
    def backend(self) -> Any | None:
        return self.app.backend

    def start(self, handle: JobHandle, kwargs: dict[str, Any], admitted: Admitted | None = None) -> None:
        from kombu.exceptions import OperationalError
        from redis.exceptions import RedisError

        self._check_redis(handle.id)
        if self.order is not None:
            self.order.enter(handle.id, time.time())
        try:
            self.app.send_task(
                JOB_TASK, kwargs=kwargs, task_id=handle.id, queue=CPU_QUEUE,
                retry=True, retry_policy=SEND_RETRY_POLICY,
                # send_task, unlike a task's apply_async, leaves task_default_priority out.
                priority=self.app.conf.task_default_priority,
            )
        except (OperationalError, RedisError, OSError) as exc:
            raise RetryableError(f"broker unreachable, job {handle.id} was not queued: {no_secrets(exc)}") from None
        except RuntimeError as exc:
            # Celery's retry loop gives up with a bare RuntimeError("Retry limit exceeded...").
            raise RetryableError(f"broker unreachable, job {handle.id} was not queued: {exc}") from None

    def _check_redis(self, job_id: str) -> None:
        """One PING before anything is sent: a Redis that is down is one line, at once, not
        Celery's result-store reconnect loop (20 lines and 20 s) ending in the same error."""
        url = self.context.settings.broker_url
        if not url.startswith(("redis://", "rediss://")):
            return
        import redis

        try:
            redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
        except (redis.RedisError, OSError) as exc:
            raise RetryableError(f"broker unreachable at {without_credentials(url)}: {no_secrets(exc).rstrip('.')}; "
                                 f"job {job_id} was not queued (check NARRATOR_BROKER_URL)") from None

    def job_state(self, task_id: str) -> str | None:
        return str(self.app.AsyncResult(task_id).state)

    def cancel(self, handle: JobHandle) -> None:
        from .control import revoke_job

        revoke_job(handle.id, handle.task_id, handle.store, app=self.app)
        if self.order is not None:
            self.order.leave(handle.id)  # a revoked fan-out never runs to leave itself

    def get_ready(self, warm_up: bool = True) -> None:
        """The workers synthesize: wait for the one whose ready file NARRATOR_READY_FILE names, if any.

        docker/start-runpod.sh sets it to this container's GPU worker's. The wait ends early
        when that worker's warm-up failed or it died, and at NARRATOR_READY_TIMEOUT at the latest.
        """
        settings = self.context.settings
        if not settings.ready_file:
            return
        from ..ops import worker_state

        path = Path(settings.ready_file)
        log.info("waiting for the GPU worker", extra={"ready_file": str(path), "timeout": settings.ready_timeout})
        status = worker_state.wait(path, settings.ready_timeout)
        log.info("GPU worker ready, taking jobs", extra={"worker": status.hostname, "pid": status.pid})


def no_secrets(exc: BaseException) -> str:
    """An error's text without URL credentials: connection errors may quote the broker URL, password included."""
    return without_credentials(str(exc))
