"""Submit a job and follow it: the Python API for other backends (and the CLI)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

from .errors import JobCancelled, JobFailed, JobTimeout, NarratorError, RetryableError
from .job import jobdata
from .job.admission import Admitted, admit
from .job.liveness import Liveness
from .request import JobRequest
from .result import JobResult, Progress
from .settings import Settings
from .storage import ObjectStore, open_store

log = logging.getLogger(__name__)

#: Requests larger than this travel through storage, not the broker (SQS caps messages at 256 KB).
INLINE_REQUEST_BYTES = 64 * 1024
#: A producer must not hang on a dead broker: three quick tries, then a RetryableError.
SEND_RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
#: Waiters poll storage starting fast (short jobs) and backing off to this.
POLL_MIN_SECONDS = 0.02
POLL_MAX_SECONDS = 0.2


class JobHandle:
    """A submitted job. Everything it reports comes from storage and the result backend."""

    def __init__(self, job_id: str, settings: Settings, task_id: str | None = None) -> None:
        self.id = jobdata.normalise_job_id(job_id)
        self.task_id = task_id or job_id
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._liveness = Liveness()

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)

    def progress(self) -> Progress:
        return jobdata.read_progress(self.store, self.id)

    def status(self) -> str:
        state = self.progress().state
        if state in {"SUCCESS", "FAILURE", "CANCELLED"} or self.settings.eager:
            return state
        backend_state = self._async_result().state
        return "FAILURE" if backend_state == "FAILURE" else state

    def result(self) -> JobResult | None:
        return jobdata.read_result(self.store, self.id)

    def wait(self, timeout: float | None = None, on_progress: Callable[[Progress], None] | None = None) -> JobResult:
        """Block until the job ends or ``timeout`` seconds pass (JobTimeout)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.settings.job_timeout)
        last: tuple[int, int, str] | None = None
        interval = POLL_MIN_SECONDS
        while True:
            try:
                progress = self.progress()
            except RetryableError as exc:
                # A storage blip is not the job's failure: look again until the deadline.
                if time.monotonic() >= deadline:
                    raise JobTimeout(f"job {self.id}: storage unreachable until the deadline: {exc}") from exc
                time.sleep(POLL_MAX_SECONDS)
                continue
            key = (progress.chunks_done, progress.chunks_total, progress.state)
            if on_progress is not None and key != last:
                on_progress(progress)
                last = key
            self._liveness.saw_progress(key, time.monotonic())
            outcome = self._outcome(progress)
            if outcome is not None:
                return outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeout(f"job {self.id} did not finish within {timeout} s (state {progress.state})")
            time.sleep(min(interval, remaining))
            interval = min(POLL_MAX_SECONDS, interval * 1.5)

    def _outcome(self, progress: Progress) -> JobResult | None:
        if progress.state == "SUCCESS":
            result = self.result()
            if result is not None:
                return result
        if progress.state == "CANCELLED":
            raise JobCancelled(f"job {self.id} was cancelled")
        if progress.state == "FAILURE":
            raise JobFailed(f"job {self.id} failed: {progress.error}")
        if self._thread is not None and not self._thread.is_alive():
            if self._thread_error is not None:
                raise JobFailed(f"job {self.id} failed: {self._thread_error}") from self._thread_error
            result = self.result()
            if result is None:
                raise JobFailed(f"job {self.id} ended without a result")
            return result
        if not self.settings.eager:
            self._check_backend(progress)
        return None

    def _check_backend(self, progress: Progress) -> None:
        from kombu.exceptions import OperationalError
        from redis.exceptions import RedisError

        now = time.monotonic()
        try:
            meta = self._async_result().backend.get_task_meta(self.task_id)
        except (OperationalError, RedisError, OSError) as exc:
            if self._liveness.backend_failed(now):
                raise RetryableError(f"result backend unreachable while waiting for job {self.id}: {exc}") from exc
            return
        state = str(meta.get("status", "PENDING"))
        if state == "FAILURE":
            raise JobFailed(f"job {self.id} failed: {meta.get('result')}")
        self._liveness.saw_state(state, now)
        if self._liveness.lost(now):
            raise JobFailed(
                f"job {self.id} was lost: the result backend no longer knows it (restarted without persistence?) "
                f"and it has made no progress for {self._liveness.lost_after:.0f} s "
                f"({progress.chunks_done}/{progress.chunks_total} chunks done); submit it again: "
                "finished chunks come from the cache"
            )

    def cancel(self) -> None:
        """Stop the job: mark it, revoke its queued tasks, interrupt running chunks."""
        jobdata.put_json(self.store, jobdata.cancel_key(self.id), {"cancelled_at": time.time()})
        if self.settings.eager:
            # The job runs in this process: interrupt its engines here.
            from .engines import running_engines

            for engine in running_engines():
                engine.cancel(self.id)
            return
        from .tasks.control import revoke_job

        revoke_job(self.id, self.task_id, self.store)

    def audio_bytes(self) -> bytes:
        result = self.result()
        if result is None:
            raise JobFailed(f"job {self.id} has no result yet")
        return self.store.get_bytes(result.output_key)

    def _async_result(self) -> Any:
        from .tasks import app

        return app.AsyncResult(self.task_id)


def submit(request: JobRequest | dict[str, Any], settings: Settings | None = None) -> JobHandle:
    """Validate ``request`` (raising InvalidRequest before anything is queued) and start it."""
    settings = settings or Settings.from_env()
    from .tasks import configure, runtime

    app = configure(settings)
    admitted: Admitted = admit(request, settings, runtime.current().registry)
    job_id = uuid.uuid4().hex
    handle = JobHandle(job_id, settings)
    payload = admitted.request.to_json()
    kwargs: dict[str, Any] = {"request": payload}
    if len(json.dumps(payload)) > INLINE_REQUEST_BYTES:
        jobdata.put_json(handle.store, jobdata.request_key(job_id), payload)
        kwargs = {"request": None, "request_ref": jobdata.request_key(job_id)}
    if settings.eager:
        _run_in_thread(handle, kwargs)
    else:
        _send(app, job_id, kwargs)
    log.info("submitted", extra={"job_id": job_id, "eager": settings.eager})
    return handle


def _send(app: Any, job_id: str, kwargs: dict[str, Any]) -> None:
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from .tasks.app import CPU_QUEUE

    try:
        app.send_task(
            "narrator.job",
            kwargs=kwargs,
            task_id=job_id,
            queue=CPU_QUEUE,
            retry=True,
            retry_policy=SEND_RETRY_POLICY,
        )
    except (OperationalError, RedisError, OSError) as exc:
        raise RetryableError(f"broker unreachable, job {job_id} was not queued: {_no_secrets(exc)}") from None
    except RuntimeError as exc:
        # Celery's retry loop gives up with a bare RuntimeError("Retry limit exceeded...").
        raise RetryableError(f"broker unreachable, job {job_id} was not queued: {exc}") from None


def _no_secrets(exc: BaseException) -> str:
    # Connection errors may quote the broker URL, password included.
    return re.sub(r"://[^@/\s]*@", "://***@", str(exc))


def get(job_id: str, settings: Settings | None = None) -> JobHandle:
    """Re-attach to a job from any process that shares the storage and backend."""
    settings = settings or Settings.from_env()
    if not settings.eager:
        from .tasks import configure

        configure(settings)
    return JobHandle(job_id, settings)


def _run_in_thread(handle: JobHandle, kwargs: dict[str, Any]) -> None:
    from .tasks.pipeline import job

    def run() -> None:
        try:
            job.apply(kwargs=kwargs, task_id=handle.id, throw=True)
        except NarratorError as exc:
            handle._thread_error = exc
        except Exception as exc:
            log.exception("job crashed", extra={"job_id": handle.id})
            handle._thread_error = exc

    handle._thread = threading.Thread(target=run, name=f"narrator-job-{handle.id[:8]}", daemon=True)
    handle._thread.start()
