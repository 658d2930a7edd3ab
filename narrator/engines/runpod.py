"""The ``runpod`` engine: each chunk to a RunPod serverless endpoint running narrator's GPU image.

The Celery chain runs anywhere on CPUs; RunPod scales GPUs to the chunks in flight and back
to zero. One worker process keeps many chunks in flight (``narrator worker --pool threads``):
this engine is shared by its threads and holds no lock while a chunk is away.

A chunk goes as ``/run`` (its RunPod id known at once, so a cancel reaches it even while it is
queued) and is followed on ``/status`` (:func:`poll_interval`). One still queued after the model's
``queue_timeout`` is cancelled and fails the job, saying which endpoint and what to check. The
endpoint reads the voices from, and writes the audio to, the job's folder in
the bucket both share (narrator.runpod.chunk_job); a cancelled job's marker there stops its
chunks on the endpoint, and the remote jobs this engine knows of are cancelled on RunPod too.

What may pass is retried by the chunk task (NARRATOR_CHUNK_MAX_RETRIES, with backoff): 429,
5xx, an unreachable API, a FAILED or TIMED_OUT remote job (a worker that crashed), an engine
error the endpoint calls retryable. A refused key, an unknown endpoint, an endpoint that does
not run the model, a chunk it calls permanent: the job fails at once, in one line.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .. import audio
from ..audio.types import Audio
from ..comfy.client import Deadline
from ..errors import (
    AudioError,
    EngineFailed,
    EngineUnavailable,
    JobCancelled,
    ModelError,
    NarratorError,
    RemoteJobFailed,
    RemoteJobTimedOut,
)
from ..models import ModelSpec, RunPodTarget
from ..runpod.chunk_job import ChunkDone, ChunkError, ChunkJob, output_key, voice_key
from ..runpod.client import RunPodClient, finished
from ..runpod.client_types import IN_QUEUE, RemoteJob
from ..settings import Settings
from ..storage import ObjectStore, open_store
from .base import CancelledJobs, Clip, Engine, SynthesisInput

log = logging.getLogger(__name__)

#: ``/status`` polls, in seconds: at least POLL_MIN and at most POLL_CAP apart (see poll_interval).
POLL_MIN, POLL_CAP, POLL_FRACTION = 0.1, 2.0, 0.1
#: Weight of the newest chunk in the endpoint's typical execution time (an exponential average).
TYPICAL_WEIGHT = 0.3


class RunPodEngine(Engine):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        self.spec = spec
        self.target = target_of(spec)
        self.settings = settings
        self.client = RunPodClient.from_settings(self.target.endpoint, settings)
        self._store: ObjectStore = open_store(settings)
        self._lock = threading.Lock()
        self._in_flight: dict[str, set[str]] = {}
        """narrator job id -> the RunPod job ids of its chunks this process knows are away."""
        self._cancelled = CancelledJobs()
        self._wakes: dict[str, threading.Event] = {}
        """narrator job id -> the event its chunks' polls wait on; set by :meth:`cancel`."""
        self._typical: float | None = None
        """How long this endpoint's chunks have taken to run, lately (from RunPod's executionTime)."""
        self._voices: set[str] = set()
        """Voice keys this process has stored (they are content-addressed, so once is enough)."""

    @classmethod
    def check_params(cls, spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
        target_of(spec)
        return super().check_params(spec, params)

    # -- Engine ---------------------------------------------------------------------------------
    def synthesize(self, item: SynthesisInput) -> Audio:
        return self._decode(self.render(item).flac, item)

    def render(self, item: SynthesisInput) -> Clip:
        chunk = ChunkJob(
            model=self.target.model, text=item.text, speakers=item.speakers, voices=self._put_voices(item),
            params=dict(item.params), output_key=output_key(item.job_id, item.index, uuid.uuid4().hex[:12]),
            job_id=item.job_id, index=item.index,
        )
        done = self._away(chunk, Deadline(self.settings.chunk_time_limit))
        data = self._store.get_bytes(done.output_key)
        self._store.delete(done.output_key)
        seconds = audio.flac_seconds(data, self.spec.sample_rate)
        if seconds is not None:
            return Clip(data, seconds)
        # Not the chunk format this model stores (the endpoint's model has another rate): converted.
        return Clip.of(self._decode(data, item))

    def _decode(self, data: bytes, item: SynthesisInput) -> Audio:
        try:
            decoded = audio.decode(data, field=f"chunk {item.index} from RunPod")
        except AudioError as exc:
            raise EngineFailed(f"chunk {item.index}: the RunPod endpoint wrote unreadable audio: {exc}") from exc
        return audio.resample(decoded, self.spec.sample_rate)

    def cancel(self, job_id: str) -> None:
        """Cancel the job's chunks on RunPod, queued or running; their waits end at once."""
        with self._lock:
            self._cancelled.add(job_id)
            remote = list(self._in_flight.get(job_id, ()))
            wake = self._wakes.get(job_id)
        if wake is not None:
            wake.set()
        for remote_id in remote:
            try:
                self.client.cancel(remote_id, deadline=Deadline(10))
            except NarratorError as exc:  # the job's marker stops the chunk on the endpoint anyway
                log.warning("runpod chunk not cancelled", extra={"job_id": job_id, "request_id": remote_id,
                                                                 "error": str(exc)})

    def close(self) -> None:
        self.client.close()

    # -- one chunk away ---------------------------------------------------------------------------
    def _away(self, chunk: ChunkJob, deadline: Deadline) -> ChunkDone:
        remote = self.client.run({"chunk": chunk.model_dump(mode="json")},
                                 execution_timeout_ms=int(deadline.seconds * 1000), deadline=deadline)
        wake = self._track(chunk.job_id, remote.id)
        try:
            remote = self._follow(chunk, remote, deadline, wake)
        finally:
            self._untrack(chunk.job_id, remote.id)
        try:
            finished(remote, self.target.endpoint)
        except (RemoteJobFailed, RemoteJobTimedOut) as exc:
            # The handler answers every chunk it understood (below); FAILED is a worker that crashed.
            raise EngineUnavailable(str(exc)) from None
        return self._outcome(chunk, remote)

    def _follow(self, chunk: ChunkJob, remote: RemoteJob, deadline: Deadline, wake: threading.Event) -> RemoteJob:
        """Poll ``/status`` to the end; a chunk queued past ``queue_timeout`` or running past the deadline
        is cancelled on RunPod before the error is raised, so nothing is left running there."""
        sent = time.monotonic()
        while not remote.terminal:
            waited = time.monotonic() - sent
            if remote.status == IN_QUEUE and waited > self.target.queue_timeout:
                self._cancel_quietly(remote.id)
                raise EngineFailed(
                    f"RunPod endpoint {self.target.endpoint} did not start chunk {chunk.index} within "
                    f"{self.target.queue_timeout:g} s (no worker free? check the endpoint's max workers and "
                    "GPU availability); it was cancelled")
            if deadline.expired:
                self._cancel_quietly(remote.id)
                raise EngineUnavailable(
                    f"RunPod job {remote.id} on endpoint {self.target.endpoint} did not finish chunk {chunk.index} "
                    f"within {deadline.seconds:g} s (NARRATOR_CHUNK_TIME_LIMIT); it was cancelled")
            running = waited - remote.delay_ms / 1000 if remote.delay_ms is not None else None
            wake.wait(deadline.cap(poll_interval(waited, running, self._typical)))  # cancel() wakes it at once
            remote = self.client.status(remote.id, deadline=Deadline(self.client.request_timeout))
        if remote.execution_ms is not None:
            seconds = remote.execution_ms / 1000
            with self._lock:
                typical = self._typical
                self._typical = seconds if typical is None else typical + TYPICAL_WEIGHT * (seconds - typical)
        return remote

    def _track(self, job_id: str, remote_id: str) -> threading.Event:
        with self._lock:
            self._in_flight.setdefault(job_id, set()).add(remote_id)
            wake = self._wakes.setdefault(job_id, threading.Event())
            cancelled = job_id in self._cancelled
        if cancelled:  # cancelled while this chunk was being sent
            self._cancel_quietly(remote_id)
        return wake

    def _untrack(self, job_id: str, remote_id: str) -> None:
        with self._lock:
            left = self._in_flight.get(job_id, set())
            left.discard(remote_id)
            if not left:
                self._in_flight.pop(job_id, None)
                self._wakes.pop(job_id, None)

    def _outcome(self, chunk: ChunkJob, remote: RemoteJob) -> ChunkDone:
        output = remote.output
        if isinstance(output, Mapping) and "chunk" in output:
            return ChunkDone.model_validate(output["chunk"])
        if isinstance(output, Mapping) and "chunk_error" in output:
            error = ChunkError.model_validate(output["chunk_error"])
            where = f"RunPod endpoint {self.target.endpoint}"
            if error.cancelled:
                raise JobCancelled(f"job {chunk.job_id}: cancelled")
            if error.retryable:
                raise EngineUnavailable(f"{where}: {error.message}")
            raise EngineFailed(f"{where}: {error.message}")
        raise EngineFailed(
            f"RunPod endpoint {self.target.endpoint} answered chunk {chunk.index} with no chunk: is it running "
            f"narrator's GPU image (a handler with chunk mode)? It said: {str(output)[:200]}")

    def _put_voices(self, item: SynthesisInput) -> dict[int, str]:
        keys = {}
        for speaker, voice in item.voices.items():
            key = voice_key(item.job_id, voice.digest)
            with self._lock:
                known = key in self._voices
            if not known:
                if not self._store.exists(key):
                    self._store.put_bytes(key, voice.data, "audio/wav")
                with self._lock:
                    self._voices.add(key)
            keys[speaker] = key
        return keys

    def _cancel_quietly(self, remote_id: str) -> None:
        try:
            self.client.cancel(remote_id, deadline=Deadline(10))
        except NarratorError as exc:
            log.warning("runpod chunk not cancelled", extra={"request_id": remote_id, "error": str(exc)})


def poll_interval(waited: float, running: float | None = None, typical: float | None = None) -> float:
    """Seconds to the next ``/status`` of a chunk sent ``waited`` s ago, running for ``running`` s
    (None: still queued), on an endpoint whose chunks here have taken ``typical`` s (None: none yet).

    A running chunk is looked at when chunks like it are done; otherwise every tenth of the time
    so far: a chunk is seen done within ~10% of its time, and a long one costs a few dozen calls.
    """
    if running is not None and typical is not None and running < typical:
        return min(POLL_CAP, max(POLL_MIN, typical - running))
    basis = running if running is not None else waited
    return min(POLL_CAP, max(POLL_MIN, basis * POLL_FRACTION))


def target_of(spec: ModelSpec) -> RunPodTarget:
    if spec.engine != "runpod" or spec.runpod is None:
        raise ModelError(f"model {spec.name!r}: the runpod engine needs engine = 'runpod' and a [runpod] table "
                         "(endpoint, model)")
    return spec.runpod
