"""The four pipeline tasks and the ``narrator.job`` entry task.

Tasks parse their arguments, call the core (staging, synthesis, joining,
publish) and format the result; storage is the source of truth between them.
Task ids are derived from the job id, so a job's tasks can be found (and revoked)
from the job id alone.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, chain, chord, group
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from ..engines import Engine, get_engine
from ..errors import EngineUnavailable, JobCancelled, NarratorError, PermanentError, RetryableError
from ..job import cancel, jobdata
from ..job.admission import admit
from ..job.concatenate import join_job
from ..job.stage import stage
from ..job.synthesize import synthesize_chunk as synthesize_one
from ..job.upload import publish
from ..ops import logs
from . import runtime
from .app import GPU_QUEUE, app

log = logging.getLogger(__name__)


def stage_id(job_id: str) -> str:
    return f"{job_id}-stage"


def fanout_id(job_id: str) -> str:
    return f"{job_id}-synthesize"


def chunk_id(job_id: str, index: int) -> str:
    return f"{job_id}-chunk-{index:05d}"


class JobTask(Task):  # type: ignore[misc]
    """Base of the pipeline tasks: their first argument is the job id.

    Every step is idempotent (it rewrites the same objects), so transient failures
    (storage throttling, a broker blip) are retried with jittered backoff.
    """

    abstract = True
    autoretry_for = (RetryableError,)
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 5

    def retry(self, *args: Any, exc: BaseException | None = None, throw: bool = True, **kwargs: Any) -> Any:
        if self.request.is_eager and isinstance(exc, NarratorError):
            # In-process (no broker) Celery cannot wait out a retry's countdown, and with
            # task_eager_propagates its Retry would end the job as "Retry in 1.2s: ...":
            # fail with the error itself, which the caller (CLI, RunPod handler) reports.
            if throw:
                raise exc
            return exc
        return super().retry(*args, exc=exc, throw=throw, **kwargs)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = kwargs.get("job_id") or (args[0] if args else "")
        if job_id and jobdata.JOB_ID.match(str(job_id)):
            record_failure(str(job_id), exc, self.name, self.request.root_id or task_id)


def record_failure(job_id: str, exc: BaseException, task_name: str, root_id: str) -> None:
    """Make a failure visible to every waiter, whichever task failed."""
    store = runtime.current().store
    message = str(exc) if isinstance(exc, NarratorError) else f"{type(exc).__name__}: {exc}"
    try:
        jobdata.put_json(store, jobdata.error_key(job_id), {"error": message, "task": task_name})
    except NarratorError:
        log.exception("could not record failure", extra={"job_id": job_id})
    if not app.conf.task_always_eager and app.backend is not None:
        # The job id's own result must fail too, or a waiter on AsyncResult(job_id) hangs.
        app.backend.mark_as_failure(root_id, exc)
    log.error("job failed", extra={"job_id": job_id, "task": task_name, "error": message})


def _check_cancelled(job_id: str) -> None:
    if runtime.current().store.exists(jobdata.cancel_key(job_id)):
        raise JobCancelled(f"job {job_id} was cancelled")


@app.task(name="narrator.job", bind=True, base=JobTask)
def job(self: Task, request: dict[str, Any] | None = None, request_ref: str | None = None) -> Any:
    """Entry task: takes the request as JSON; its result is the job's JobResult."""
    job_id = jobdata.normalise_job_id(self.request.id or "")
    canvas = chain(
        stage_input.si(job_id, request, request_ref).set(task_id=stage_id(job_id)),
        synthesize.si(job_id).set(task_id=fanout_id(job_id)),
        upload.s(job_id=job_id),
    )
    return self.replace(canvas)


@app.task(name="narrator.stage_input", base=JobTask)
def stage_input(job_id: str, request: dict[str, Any] | None, request_ref: str | None = None) -> dict[str, Any]:
    rt = runtime.current()
    if request is None and request_ref is not None:
        request = jobdata.get_json(rt.store, jobdata.request_key(job_id))
    admitted = admit(request, rt.settings, rt.registry)
    manifest = stage(job_id, admitted, rt.settings, rt.store)
    return {"job_id": job_id, "chunks": len(manifest.chunks)}


@app.task(name="narrator.synthesize", bind=True, base=JobTask)
def synthesize(self: Task, job_id: str) -> Any:
    """Fan out: one chunk task per chunk (GPU queue), then concatenate (CPU queue)."""
    _check_cancelled(job_id)
    manifest = jobdata.read_manifest(runtime.current().store, job_id)
    header = group(
        synthesize_chunk.si(job_id, entry.index).set(task_id=chunk_id(job_id, entry.index), queue=GPU_QUEUE)
        for entry in manifest.chunks
    )
    return self.replace(chord(header, concatenate.si(job_id)))


@app.task(
    name="narrator.synthesize_chunk",
    bind=True,
    base=JobTask,
    autoretry_for=(),
    acks_late=True,
)
def synthesize_chunk(self: Task, job_id: str, index: int) -> dict[str, Any]:
    rt = runtime.current()
    engine: Engine | None = None
    try:
        _check_cancelled(job_id)
        manifest = rt.manifest(job_id)
        logs.bind(model=manifest.model)
        spec = rt.registry.get(manifest.model)
        if spec is None:
            raise PermanentError(f"model {manifest.model!r} is not installed on this worker")

        def engine_for() -> Engine:
            nonlocal engine
            engine = get_engine(spec, rt.settings)
            return engine

        with cancel.watch(rt.store, job_id, lambda: engine):
            outcome = synthesize_one(job_id, index, manifest, rt.store, engine_for)
    except SoftTimeLimitExceeded:
        if engine is not None:
            engine.cancel(job_id)  # free the GPU before the retry lands on it
        exc: NarratorError = EngineUnavailable(f"chunk {index}: over the {rt.settings.chunk_soft_time_limit} s limit")
        raise _retry_or_fail(self, exc, job_id, index) from None
    except NarratorError as exc:
        raise _retry_or_fail(self, exc, job_id, index) from exc
    publish_progress(job_id, self.request.root_id)
    return {"index": outcome.index, "seconds": outcome.seconds, "cached": outcome.cached}


def _retry_or_fail(task: Task, exc: NarratorError, job_id: str, index: int) -> BaseException:
    """The exception to raise: a Celery retry for transient errors while retries last, else the error."""
    retries = runtime.current().settings.chunk_max_retries
    if exc.retryable and not task.request.is_eager and task.request.retries < retries:
        # Jitter spreads the retries of many chunks that failed together (a ComfyUI restart).
        countdown = min(60.0, 2.0**task.request.retries) * random.uniform(0.5, 1.5)
        log.warning("chunk retry", extra={"job_id": job_id, "chunk": index, "error": str(exc), "in": countdown})
        return task.retry(exc=exc, countdown=countdown, max_retries=retries, throw=False)  # type: ignore[no-any-return]
    if not str(exc).startswith(f"chunk {index}:"):
        exc.args = (f"chunk {index}: {exc}", *exc.args[1:])
    return exc


def publish_progress(job_id: str, root_id: str | None) -> None:
    """Progress as the job task's PROGRESS state, for producers that only speak Celery.

    Chunk tasks end before the chord fires upload, so these writes precede the
    job's SUCCESS; a redelivered duplicate checks for the result first.
    """
    if app.conf.task_always_eager or app.backend is None or not root_id:
        return
    store = runtime.current().store
    try:
        progress = jobdata.read_progress(store, job_id)
    except NarratorError as exc:
        # Progress is a courtesy; the chunk itself is done and stored.
        log.warning("progress not published", extra={"job_id": job_id, "error": str(exc)})
        return
    if progress.state == "SUCCESS":
        return
    meta = {"chunks_done": progress.chunks_done, "chunks_total": progress.chunks_total,
            "audio_seconds": round(progress.audio_seconds, 3)}
    app.backend.store_result(root_id, meta, "PROGRESS")


@app.task(name="narrator.concatenate", base=JobTask)
def concatenate(job_id: str) -> dict[str, Any]:
    rt = runtime.current()
    _check_cancelled(job_id)
    manifest = jobdata.read_manifest(rt.store, job_id)
    joined = join_job(manifest, rt.store)
    return {"job_id": job_id, "key": joined.key, "duration": joined.duration}


@app.task(name="narrator.upload", base=JobTask)
def upload(joined: dict[str, Any] | None, job_id: str | None = None) -> dict[str, Any]:
    # In a chain after a chord, the previous result arrives first; the job id is bound.
    if job_id is None:
        raise Ignore()
    rt = runtime.current()
    _check_cancelled(job_id)
    manifest = jobdata.read_manifest(rt.store, job_id)
    if not joined:
        raise PermanentError(f"job {job_id}: nothing was joined")
    result = publish(manifest, joined["key"], float(joined["duration"]), rt.settings, rt.store)
    return result.to_json()
