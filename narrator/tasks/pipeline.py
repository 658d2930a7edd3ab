"""The four pipeline tasks and the ``narrator.job`` entry task.

Tasks parse their arguments, call the core (staging, synthesis, joining,
publish) and format the result; storage is the source of truth between them.
Task ids are derived from the job id, so a job's tasks can be found (and revoked)
from the job id alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from celery import Task, chain, chord, group
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from ..engines import Engine
from ..errors import EngineUnavailable, JobCancelled, NarratorError, PermanentError
from ..job import cancel, verify
from ..job.admission import admit, take_handed
from ..job.concatenate import join_job
from ..job.stage import stage
from ..job.store import JobStore, Manifest, normalise_job_id
from ..job.synthesize import synthesize_chunk as synthesize_one
from ..job.upload import publish
from ..models import ModelSpec
from ..ops import logs
from ..verify.load import on_gpu, recogniser_for
from .app import CPU_QUEUE, GPU_QUEUE, app
from .context import current
from .names import RETRY_PRIORITY, job_id_of

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def stage_id(job_id: str) -> str:
    return f"{job_id}-stage"


def fanout_id(job_id: str) -> str:
    return f"{job_id}-synthesize"


def chunk_id(job_id: str, index: int) -> str:
    return f"{job_id}-chunk-{index:05d}"


class JobTask(Task[_P, _R]):
    """Base of the pipeline tasks: their first argument is the job id (the entry task's is its own id).

    Every step is idempotent (it rewrites the same objects), so a task that fails with a
    retryable error (storage throttling, a broker blip, ComfyUI restarting) runs again
    as the run mode's retry policy says (tasks/retry.py): every task, chunks included, by
    the one policy, rather than by Celery's autoretry.
    """

    abstract = True

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return super().__call__(*args, **kwargs)
        except NarratorError as exc:
            retry = _retry_or_fail(self, exc)
            if retry is not None:
                raise retry from exc
            # Before Celery marks this task failed, and a chord passes it on as "Dependency ...
            # raised ...": a waiter that sees the job fail reads this task's own error.
            self.on_failure(exc, self.request.id or "", args, kwargs, None)
            raise

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = job_id_of(self.name, task_id, args, kwargs)
        if job_id:
            record_failure(job_id, exc, self.name, self.request.root_id or task_id)
            order = current().mode.order
            if order is not None:
                order.leave(job_id)  # an ended job holds up no later job's fan-out


def _retry_or_fail(task: Task[..., Any], exc: NarratorError) -> BaseException | None:
    """The Celery retry to raise (the task is already sent again) if the policy retries ``exc``; None: fail."""
    policy = current().mode.retry
    attempt = int(task.request.retries or 0)
    delay = policy.delay(exc, attempt)
    if delay is None:
        return None
    log.warning("task will run again", extra={"task": task.name, "error": str(exc), "retry": attempt + 1,
                                              "in": round(delay, 2)})
    # At RETRY_PRIORITY: next in line once its countdown ends, not behind every chunk queued since.
    return task.retry(exc=exc, countdown=delay, max_retries=policy.max_retries, throw=False,
                      priority=RETRY_PRIORITY)


def record_failure(job_id: str, exc: BaseException, task_name: str, root_id: str) -> None:
    """Record the job's failure, whichever task failed: the one place a failure is written.

    The job's error record (storage) is what every waiter reads; the first failure
    stands, and what follows from it (a chord's error, Celery's own on_failure after
    the task's) records nothing. The job id's Celery result is failed with it, as
    PROGRESS mirrors progress, for producers that only speak Celery: without it a
    waiter on AsyncResult(job_id) hangs. In-process the caller reports the error
    itself, so it is logged lower there.
    """
    message = str(exc) if isinstance(exc, NarratorError) else f"{type(exc).__name__}: {exc}"
    try:
        first = JobStore(current().store, job_id).record_error(message, task_name)
    except NarratorError:
        log.exception("could not record failure", extra={"job_id": job_id})
        first = True  # storage failed: the result backend is then the only record
    if not first:
        return
    backend = current().mode.backend
    if backend is not None:
        backend.mark_as_failure(root_id, exc)
    if isinstance(exc, JobCancelled):
        # A user's cancel is how a job is meant to end sometimes: one line, no alarm, no traceback.
        log.info("job cancelled", extra={"job_id": job_id, "task": task_name})
        return
    level = logging.ERROR if backend is not None else logging.INFO
    log.log(level, "job failed", extra={"job_id": job_id, "task": task_name, "error": message})


def _check_cancelled(job_id: str) -> None:
    if JobStore(current().store, job_id).cancelled():
        raise JobCancelled(f"job {job_id} was cancelled")


def typed_task(
    register: Callable[[Callable[..., Any]], JobTask[Any, Any]],
) -> Callable[[Callable[_P, _R]], JobTask[_P, _R]]:
    """``register`` (an ``app.task(..., base=JobTask)`` decorator) as it is, typed to keep the task's signature.

    celery-types types a task made with ``base=`` as the bare base class, whose calls, ``si()``
    and results would take and give Any; typed through this, they are the function's own.
    """
    return register


def typed_bound_task(
    register: Callable[[Callable[..., Any]], JobTask[Any, Any]],
) -> Callable[[Callable[Concatenate[JobTask[Any, Any], _P], _R]], JobTask[_P, _R]]:
    """:func:`typed_task` for a ``bind=True`` task: its first parameter (the task) is not the caller's."""
    return register


@typed_bound_task(app.task(name="narrator.job", bind=True, base=JobTask))
def job(self: JobTask[..., Any], request: dict[str, Any] | None = None, request_ref: str | None = None) -> Any:
    """Entry task: takes the request as JSON; its result is the job's JobResult."""
    job_id = normalise_job_id(self.request.id or "")
    canvas = chain(
        stage_input.si(job_id, request, request_ref).set(task_id=stage_id(job_id)),
        synthesize.si(job_id).set(task_id=fanout_id(job_id)),
        upload.s(job_id=job_id),
    )
    return self.replace(canvas)


@typed_task(app.task(name="narrator.stage_input", base=JobTask))
def stage_input(job_id: str, request: dict[str, Any] | None, request_ref: str | None = None) -> dict[str, Any]:
    rt = current()
    # Submitted in this process: stage from the producer's admission (voices decoded, text chunked).
    # From another process or language: the raw request, admitted here, once.
    admitted = take_handed(job_id)
    if admitted is None:
        if request is None and request_ref is not None:
            request = JobStore(rt.store, job_id).read_request()
        admitted = admit(request, rt.settings, rt.registry)
    manifest = stage(job_id, admitted, rt.settings, rt.store)
    order = rt.mode.order
    if order is not None:  # next to fan out, in the place it took at submission
        order.staged(job_id, manifest.created_at)
    return {"job_id": job_id, "chunks": len(manifest.chunks)}


@typed_bound_task(app.task(name="narrator.synthesize", bind=True, base=JobTask, throws=(JobCancelled,)))
def synthesize(self: JobTask[..., Any], job_id: str) -> Any:
    """Fan out: one chunk task per chunk (GPU queue), then concatenate (CPU queue)."""
    _check_cancelled(job_id)
    manifest = JobStore(current().store, job_id).manifest()
    header = group(
        synthesize_chunk.si(job_id, entry.index).set(task_id=chunk_id(job_id, entry.index), queue=GPU_QUEUE)
        for entry in manifest.chunks
    )
    order = current().mode.order
    # Jobs submitted earlier publish first: each job's chunks queue together, in submission order.
    with order.turn(job_id) if order is not None else contextlib.nullcontext():
        return self.replace(chord(header, concatenate.si(job_id)))


@typed_bound_task(app.task(
    name="narrator.synthesize_chunk",
    bind=True,
    base=JobTask,
    acks_late=True,
    Request="narrator.tasks.requeue:NextInLine",  # a chunk whose process died goes next, not last
    throws=(JobCancelled,),
))
def synthesize_chunk(self: JobTask[..., Any], job_id: str, index: int, attempt: int = 0) -> dict[str, Any]:
    """One chunk (attempt ``attempt``, narrator.job.verify) through its engine, or from the cache.

    A checked job's chunk goes on to its check: here when this process checks (in-process, or a
    GPU recogniser), else as ``verify_chunk`` on a CPU worker, so the GPU never waits on a CPU.
    """
    rt = current()
    engine: Engine | None = None
    try:
        _check_cancelled(job_id)
        manifest = rt.manifest(job_id)
        logs.bind(model=manifest.model)
        spec = _spec(manifest)

        def engine_for() -> Engine:
            nonlocal engine
            engine = rt.engine(spec)
            return engine

        def attempt_at(n: int) -> bool:
            return synthesize_one(job_id, index, manifest, rt.store, engine_for, n).cached

        with cancel.watch(rt.store, job_id, lambda: engine):
            outcome = synthesize_one(job_id, index, manifest, rt.store, engine_for, attempt)
            if manifest.verify != "off" and (rt.mode.checks_here or on_gpu(rt.settings)):
                verdict = verify.settle(job_id, index, attempt, manifest, spec, rt.store, recogniser_for(rt.settings),
                                        attempt_at, outcome.cached)
                publish_progress(job_id, self.request.root_id)
                return _checked(verdict)
    except SoftTimeLimitExceeded:
        if engine is not None:
            engine.cancel(job_id)  # free the GPU before the retry lands on it
        raise EngineUnavailable(f"chunk {index}: over the {rt.settings.chunk_soft_time_limit} s limit") from None
    except NarratorError as exc:
        _name_chunk(exc, index)  # retried or failing the job (JobTask), the error names its chunk
        raise
    if manifest.verify != "off":
        check = verify_chunk.si(job_id, index, attempt, outcome.cached).set(queue=CPU_QUEUE)
        return self.replace(check)  # the chunk's place in the chord goes with it
    publish_progress(job_id, self.request.root_id)
    return {"index": outcome.index, "seconds": outcome.seconds, "cached": outcome.cached}


@typed_bound_task(app.task(name="narrator.verify_chunk", bind=True, base=JobTask, acks_late=True,
                           throws=(JobCancelled,)))
def verify_chunk(self: JobTask[..., Any], job_id: str, index: int, attempt: int, cached: bool) -> dict[str, Any]:
    """A chunk's attempt checked on a CPU worker: kept, or sent back to the GPU queue for the next."""
    rt = current()
    try:
        _check_cancelled(job_id)
        manifest = rt.manifest(job_id)
        outcome = verify.step(job_id, index, attempt, manifest, _spec(manifest), rt.store,
                              recogniser_for(rt.settings), cached)
    except NarratorError as exc:
        _name_chunk(exc, index)
        raise
    if not isinstance(outcome, verify.Verdict):
        again = synthesize_chunk.si(job_id, index, outcome).set(queue=GPU_QUEUE, priority=RETRY_PRIORITY)
        return self.replace(again)  # next in line on the GPU queue: the job waits on it
    publish_progress(job_id, self.request.root_id)
    return _checked(outcome)


def _spec(manifest: Manifest) -> ModelSpec:
    spec = current().registry.get(manifest.model)
    if spec is None:
        raise PermanentError(f"model {manifest.model!r} is not installed on this worker")
    return spec


def _name_chunk(exc: NarratorError, index: int) -> None:
    if not str(exc).startswith(f"chunk {index}:"):
        exc.args = (f"chunk {index}: {exc}", *exc.args[1:])


def _checked(verdict: verify.Verdict) -> dict[str, Any]:
    return {"index": verdict.index, "seconds": verdict.check.seconds, "attempts": verdict.attempts,
            "passed": verdict.check.passed}


def publish_progress(job_id: str, root_id: str | None) -> None:
    """Progress as the job task's PROGRESS state, for producers that only speak Celery.

    Chunk tasks end before the chord fires upload, so these writes precede the
    job's SUCCESS; a redelivered duplicate, or a chunk finishing after another
    failed, checks that the job has not ended first (nothing turns an ended job back
    into PROGRESS).
    """
    backend = current().mode.backend
    if backend is None or not root_id:
        return
    try:
        progress = JobStore(current().store, job_id).progress()
    except NarratorError as exc:
        # Progress is a courtesy; the chunk itself is done and stored.
        log.warning("progress not published", extra={"job_id": job_id, "error": str(exc)})
        return
    if progress.state.final:
        return
    meta = {"chunks_done": progress.chunks_done, "chunks_total": progress.chunks_total,
            "audio_seconds": round(progress.audio_seconds, 3)}
    backend.store_result(root_id, meta, "PROGRESS")


@typed_task(app.task(name="narrator.concatenate", base=JobTask, throws=(JobCancelled,)))
def concatenate(job_id: str) -> dict[str, Any]:
    rt = current()
    _check_cancelled(job_id)
    manifest = JobStore(rt.store, job_id).manifest()
    joined = join_job(manifest, rt.store)
    return {"job_id": job_id, "key": joined.key, "duration": joined.duration}


@typed_task(app.task(name="narrator.upload", base=JobTask, throws=(JobCancelled,)))
def upload(joined: dict[str, Any] | None, job_id: str | None = None) -> dict[str, Any]:
    # In a chain after a chord, the previous result arrives first; the job id is bound.
    if job_id is None:
        raise Ignore()
    rt = current()
    _check_cancelled(job_id)
    manifest = JobStore(rt.store, job_id).manifest()
    if not joined:
        raise PermanentError(f"job {job_id}: nothing was joined")
    # The result as stored: inline audio never goes into the result backend (narrator.job.delivery).
    result = publish(manifest, joined["key"], float(joined["duration"]), rt.settings, rt.store)
    return result.to_json()
