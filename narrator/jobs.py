"""Submit a job and follow it: the Python API for other backends (and the CLI)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import JobCancelled, JobFailed, JobTimeout, NarratorError, RetryableError
from .job.admission import Admitted, admit
from .job.delivery import with_inline_audio
from .job.liveness import Liveness
from .job.store import JobStore, normalise_job_id
from .request import JobRequest
from .result import JobResult, JobState, Progress
from .settings import Settings
from .storage import ObjectStore, open_store

if TYPE_CHECKING:
    from .tasks.mode import RunMode

log = logging.getLogger(__name__)

#: Waiters poll storage starting fast (short jobs) and backing off to this.
POLL_MIN_SECONDS = 0.02
POLL_MAX_SECONDS = 0.2


class JobHandle:
    """A submitted job. Everything it reports comes from storage and the result backend."""

    def __init__(self, job_id: str, settings: Settings, task_id: str | None = None) -> None:
        self.id = normalise_job_id(job_id)
        self.task_id = task_id or job_id
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._liveness = Liveness()

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)

    @cached_property
    def _mode(self) -> RunMode:
        """How this job runs: in this process or through the broker (narrator.tasks.mode)."""
        from .tasks.context import context_for

        return context_for(self.settings).mode

    @cached_property
    def job_store(self) -> JobStore:
        """The job's records in storage: everything this handle reports is read there."""
        return JobStore(self.store, self.id)

    def progress(self) -> Progress:
        return self.job_store.progress()

    def status(self) -> JobState:
        state = self.progress().state
        if state.final:
            return state
        return JobState.FAILURE if self._mode.job_state(self.task_id) == "FAILURE" else state

    def result(self, inline: bool = False) -> JobResult | None:
        """The finished job's result, or None. ``inline``: with the audio in ``audio_b64`` as
        the job's request allows (unless it said ``output.audio_b64: false``, while it fits
        NARRATOR_AUDIO_B64_MAX_BYTES; see narrator.job.delivery)."""
        result = self.job_store.result()
        if result is None or not inline:
            return result
        return with_inline_audio(result, self.job_store, self.settings)

    def wait(
        self,
        timeout: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        inline: bool = False,
    ) -> JobResult:
        """Block until the job ends or ``timeout`` seconds pass (JobTimeout); ``inline`` as for :meth:`result`."""
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
            outcome = self._outcome(progress, inline)
            if outcome is not None:
                return outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobTimeout(f"job {self.id} did not finish within {timeout} s (state {progress.state})")
            time.sleep(min(interval, remaining))
            interval = min(POLL_MAX_SECONDS, interval * 1.5)

    def _outcome(self, progress: Progress, inline: bool) -> JobResult | None:
        if progress.state is JobState.SUCCESS:
            result = self.result(inline)
            if result is not None:
                return result
        if progress.state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.id} was cancelled")
        if progress.state is JobState.FAILURE:
            raise JobFailed(f"job {self.id} failed: {progress.error}")
        if self._thread is not None and not self._thread.is_alive():
            if self._thread_error is not None:
                raise JobFailed(f"job {self.id} failed: {self._thread_error}") from self._thread_error
            result = self.result(inline)
            if result is None:
                raise JobFailed(f"job {self.id} ended without a result")
            return result
        if self._mode.backend is not None:
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
            # A task records its own error in storage before Celery fails it (tasks/pipeline.py), so
            # prefer that to the backend's view, which a chord words as "Dependency ... raised ...".
            error = self.job_store.error()
            raise JobFailed(f"job {self.id} failed: {error.error if error else meta.get('result')}")
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
        self.job_store.cancel()
        self._mode.cancel(self)

    def audio_bytes(self) -> bytes:
        return self.store.get_bytes(self._finished().output_key)

    def download(self, path: Path) -> JobResult:
        """Write the finished job's audio to ``path`` (streamed); its result."""
        result = self._finished()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store.get_file(result.output_key, path)
        return result

    def _finished(self) -> JobResult:
        result = self.result()
        if result is None:
            raise JobFailed(f"job {self.id} has no result yet")
        return result

    def _async_result(self) -> Any:
        from .tasks import configure

        return configure(self.settings).AsyncResult(self.task_id)


def submit(request: JobRequest | dict[str, Any], settings: Settings | None = None) -> JobHandle:
    """Validate ``request`` (raising InvalidRequest before anything is queued) and start it.

    ``settings``: the process's (NARRATOR_* environment, read once) unless given.
    """
    from .tasks.context import context_for, current

    context = context_for(settings) if settings is not None else current()
    settings = context.settings
    admitted: Admitted = admit(request, settings, context.registry)
    mode = context.mode  # a broker configuration that cannot work fails here, before anything is stored
    job_id = uuid.uuid4().hex
    handle = JobHandle(job_id, settings)
    payload = admitted.request.to_json()
    kwargs: dict[str, Any] = {"request": payload}
    if not settings.eager:
        # Through a broker the request goes by reference: its text and voices never sit in task
        # arguments (broker messages, events, Flower), only in the job's storage, which gc expires.
        kwargs = {"request": None, "request_ref": handle.job_store.put_request(payload)}
    try:
        mode.start(handle, kwargs, admitted)
    except NarratorError:
        if not settings.eager:
            # Never queued: no record may say otherwise (``status`` would show it PENDING for ever).
            handle.job_store.objects.delete(handle.job_store.request_key)
        raise
    log.info("submitted", extra={"job_id": job_id, "mode": mode.name})
    return handle


def get(job_id: str, settings: Settings | None = None) -> JobHandle:
    """Re-attach to a job from any process that shares the storage and backend."""
    if settings is None:
        from .tasks.context import current

        settings = current().settings
    return JobHandle(job_id, settings)
