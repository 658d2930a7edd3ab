"""The endpoint side of the ``runpod`` engine: one chunk in, its audio in the shared bucket, its key out.

The same handler serves whole jobs and single chunks; an input holding ``chunk`` is a chunk
(narrator.runpod.chunk_job). It runs here, on this worker's own engine, whatever the broker
setting: a chunk is one unit of GPU work, and the engine that sent it holds the job.
"""

from __future__ import annotations

import logging
from typing import Any

from ..engines import SynthesisInput, Voice, resolve_params
from ..errors import (
    ConfigurationError,
    InvalidRequest,
    JobCancelled,
    ModelError,
    NarratorError,
    ObjectNotFound,
    PermanentError,
)
from ..job import cancel
from ..job.store import JobStore
from ..tasks.context import Context
from .chunk_job import ChunkDone, ChunkError, ChunkJob

log = logging.getLogger(__name__)


def is_chunk(job_input: Any) -> bool:
    return isinstance(job_input, dict) and "chunk" in job_input


def run_chunk(job_input: dict[str, Any], context: Context) -> dict[str, Any]:
    """``{"chunk": ChunkDone}`` or ``{"chunk_error": ChunkError}``; never raises a NarratorError."""
    try:
        job = ChunkJob.parse(job_input.get("chunk"))
        done = _synthesize(job, context)
    except JobCancelled as exc:
        return {"chunk_error": ChunkError(message=str(exc), retryable=False, cancelled=True).model_dump()}
    except NarratorError as exc:
        retryable = not isinstance(exc, PermanentError)
        log.warning("chunk failed", extra={"job_id": job_input.get("chunk", {}).get("job_id"), "error": str(exc)})
        return {"chunk_error": ChunkError(message=str(exc), retryable=retryable).model_dump()}
    return {"chunk": done.model_dump()}


def _synthesize(job: ChunkJob, context: Context) -> ChunkDone:
    spec = context.registry.get(job.model)
    if spec is None:
        runs = ", ".join(context.registry.names()) or "none"
        raise ModelError(f"this endpoint does not run model {job.model!r} (it runs: {runs})")
    if spec.engine == "runpod":
        raise ModelError(f"model {job.model!r} is itself a runpod model on this endpoint: it would send chunks on")
    try:
        params = resolve_params(spec, job.params)
    except InvalidRequest as exc:
        raise InvalidRequest(f"model {spec.name!r} on this endpoint: {exc}", field=exc.field) from None
    store = context.store
    try:
        voices = {speaker: Voice(store.get_bytes(key)) for speaker, key in job.voices.items()}
    except ObjectNotFound as exc:
        raise ConfigurationError(
            f"{exc}: this endpoint's NARRATOR_STORAGE_URL must be the bucket the job runs on",
            variable="NARRATOR_STORAGE_URL",
        ) from None
    item = SynthesisInput(job.text, voices, job.speakers, params, job_id=job.job_id, index=job.index)
    # The engine that sent this chunk cannot reach into a RunPod worker; the job's cancel marker, in
    # the bucket both share, can: a chunk of a cancelled job stops, or never starts.
    if JobStore(store, job.job_id).cancelled():
        raise JobCancelled(f"job {job.job_id} was cancelled")
    engine = context.engine(spec)
    with cancel.watch(store, job.job_id, lambda: engine):
        clip = engine.render(item)
    store.put_bytes(job.output_key, clip.flac, "audio/flac")
    log.info("chunk done", extra={"job_id": job.job_id, "chunk": job.index, "seconds": round(clip.seconds, 3)})
    return ChunkDone(output_key=job.output_key, seconds=clip.seconds, sample_rate=spec.sample_rate, model=spec.name)
