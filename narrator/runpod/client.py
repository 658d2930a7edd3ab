"""A client for a deployed RunPod serverless endpoint: submit, follow, cancel (httpx, synchronous).

Every HTTP call is bounded (``request_timeout``, and the caller's deadline when there is one),
transient failures are retried inside that bound (:mod:`.client_http`), and every error is one
of narrator's. :meth:`RunPodClient.wait` never leaves a job running on RunPod that nobody waits
for: past its deadline, past ``start_deadline`` while still queued, or on Ctrl-C it cancels the
job before it raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx

from ..comfy.client import Deadline
from ..errors import (
    ConfigurationError,
    JobCancelled,
    NarratorError,
    RemoteDeadlineExceeded,
    RemoteJobFailed,
    RemoteJobNotStarted,
    RemoteJobTimedOut,
    RemoteRateLimited,
    RemoteUnavailable,
)
from ..settings import Settings
from .client_http import Call, RetryPolicy, send
from .client_types import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_QUEUE,
    TIMED_OUT,
    EndpointHealth,
    RemoteJob,
    health_from,
    job_from,
    stream_from,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.runpod.ai/v2"
#: ``/runsync``'s ``?wait=`` range, in milliseconds.
RUNSYNC_WAIT_MS = (1_000, 300_000)
#: How long a cancel on the way out may take: it must not hold up the error it precedes.
CANCEL_SECONDS = 10.0
#: The least time a status look gets, so that a look at the deadline can still see the job end.
LOOK_GRACE = 2.0


class RunPodClient:
    """One endpoint. Thread-safe as httpx.Client is; ``wait`` is for one job per call."""

    def __init__(
        self,
        endpoint_id: str,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        request_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not endpoint_id or "/" in endpoint_id:
            raise ConfigurationError(f"not a RunPod endpoint id: {endpoint_id!r}", variable="--endpoint")
        self.endpoint_id = endpoint_id
        self.request_timeout = request_timeout
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=api_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, endpoint_id: str, settings: Settings, **options: Any) -> RunPodClient:
        if not settings.runpod_api_key:
            raise ConfigurationError("not set, nor RUNPOD_API_KEY: set one to a RunPod API key",
                                     variable="NARRATOR_RUNPOD_API_KEY")
        return cls(endpoint_id, settings.runpod_api_key, api_url=settings.runpod_api_url, **options)

    def __repr__(self) -> str:  # never the key
        return f"RunPodClient(endpoint_id={self.endpoint_id!r}, api_url={str(self._http.base_url)!r})"

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RunPodClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the operations ------------------------------------------------------------------------
    def run(self, job_input: Mapping[str, Any], *, execution_timeout_ms: int | None = None,
            ttl_ms: int | None = None, deadline: Deadline | None = None) -> RemoteJob:
        """``POST /run``: queue the job; the answer is its id, ``IN_QUEUE``."""
        body: dict[str, Any] = {"input": dict(job_input)}
        policy = {k: v for k, v in (("executionTimeout", execution_timeout_ms), ("ttl", ttl_ms)) if v is not None}
        if policy:
            body["policy"] = policy
        job = job_from(self._send(Call("POST", "run", body), deadline))
        log.info("runpod job submitted", extra={"endpoint": self.endpoint_id, "request_id": job.id})
        return job

    def runsync(self, job_input: Mapping[str, Any], *, wait_ms: int = 90_000) -> RemoteJob:
        """``POST /runsync?wait=``: the finished job, or its status when ``wait_ms`` ran out first."""
        low, high = RUNSYNC_WAIT_MS
        wait_ms = min(max(wait_ms, low), high)
        # The HTTP call must outlast RunPod's own wait, or we would give up on an answer on its way.
        budget = Deadline(wait_ms / 1000 + self.request_timeout)
        call = Call("POST", "runsync", {"input": dict(job_input)}, params={"wait": str(wait_ms)})
        return job_from(send(self._http, self.endpoint_id, call, budget, self.retry, budget.remaining()))

    def status(self, job_id: str, *, deadline: Deadline | None = None) -> RemoteJob:
        return job_from(self._send(Call("GET", f"status/{job_id}", job_id=job_id), deadline), job_id)

    def stream(self, job_id: str, *, deadline: Deadline | None = None) -> tuple[RemoteJob, list[Any]]:
        """``GET /stream``: the status and the ``output`` of every stream item not read before."""
        return stream_from(self._send(Call("GET", f"stream/{job_id}", job_id=job_id), deadline), job_id)

    def cancel(self, job_id: str, *, deadline: Deadline | None = None) -> RemoteJob:
        job = job_from(self._send(Call("POST", f"cancel/{job_id}", job_id=job_id), deadline), job_id)
        log.info("runpod job cancelled", extra={"endpoint": self.endpoint_id, "request_id": job_id})
        return job

    def health(self, *, deadline: Deadline | None = None) -> EndpointHealth:
        return health_from(self._send(Call("GET", "health"), deadline))

    # -- following a job -------------------------------------------------------------------------
    def wait(
        self,
        job_id: str,
        deadline: Deadline,
        *,
        on_update: Callable[[RemoteJob], None] | None = None,
        on_stream: Callable[[Any], None] | None = None,
        poll: float = 0.5,
        start_deadline: Deadline | None = None,
    ) -> RemoteJob:
        """Follow the job to its end: the COMPLETED job, or the error its end means.

        ``on_update`` gets every status answer that differs from the one before (an IN_PROGRESS
        job's ``output`` is the handler's latest progress); ``on_stream`` every stream item, in
        order (polling ``/stream`` too). Past ``deadline``, or still queued past ``start_deadline``,
        the job is cancelled and :class:`RemoteDeadlineExceeded` / :class:`RemoteJobNotStarted`
        raised; so is a KeyboardInterrupt after cancelling.
        """
        try:
            job = self._follow(job_id, deadline, on_update, on_stream, poll, start_deadline)
        except KeyboardInterrupt:
            self._cancel_quietly(job_id)
            raise
        return finished(job, self.endpoint_id)

    def _follow(self, job_id: str, deadline: Deadline, on_update: Callable[[RemoteJob], None] | None,
                on_stream: Callable[[Any], None] | None, poll: float, start_deadline: Deadline | None) -> RemoteJob:
        last: RemoteJob | None = None
        while True:
            try:
                job = self._look(job_id, deadline, on_stream)
            except (RemoteUnavailable, RemoteRateLimited) as exc:
                # RunPod's API failing for a while does not end the job: keep looking until the deadline.
                if deadline.expired:
                    self._cancel_quietly(job_id)
                    raise RemoteDeadlineExceeded(f"RunPod job {job_id} on endpoint {self.endpoint_id}: no status "
                                                 f"within {deadline.seconds:g} s ({exc}); it was cancelled") from None
                log.warning("runpod status unavailable", extra={"request_id": job_id, "error": str(exc)})
                time.sleep(deadline.cap(poll))
                continue
            if on_update is not None and job != last:
                on_update(job)
            last = job
            if job.terminal:
                return job
            if start_deadline is not None and job.status == IN_QUEUE and start_deadline.expired:
                self._cancel_quietly(job_id)
                raise RemoteJobNotStarted(
                    f"endpoint {self.endpoint_id} did not start job {job_id} within {start_deadline.seconds:g} s "
                    "(no worker free? check the endpoint's max workers and GPU availability); it was cancelled")
            if deadline.expired:
                self._cancel_quietly(job_id)
                raise RemoteDeadlineExceeded(
                    f"RunPod job {job_id} on endpoint {self.endpoint_id} did not finish within "
                    f"{deadline.seconds:g} s ({job.status}); it was cancelled")
            pause = deadline.cap(poll)
            if start_deadline is not None and job.status == IN_QUEUE:
                pause = min(pause, start_deadline.cap(poll))
            time.sleep(pause)

    def _look(self, job_id: str, deadline: Deadline, on_stream: Callable[[Any], None] | None) -> RemoteJob:
        """One look at the job; with ``on_stream``, new stream items first, then the status (which has
        the progress, and at the end the output, that ``/stream`` does not carry)."""
        if on_stream is not None:
            self._drain(job_id, deadline, on_stream)
        job = self.status(job_id, deadline=self._call_deadline(deadline))
        if on_stream is not None and job.terminal:
            self._drain(job_id, deadline, on_stream)  # items posted between the two calls, before the end
        return job

    def _drain(self, job_id: str, deadline: Deadline, on_stream: Callable[[Any], None]) -> None:
        _, items = self.stream(job_id, deadline=self._call_deadline(deadline))
        for item in items:
            on_stream(item)

    def _call_deadline(self, deadline: Deadline) -> Deadline:
        # A look at the deadline still gets a moment: the loop, not the call, enforces the deadline.
        return Deadline(max(deadline.remaining(), LOOK_GRACE))

    def _cancel_quietly(self, job_id: str) -> None:
        """Cancel on the way out of an error: a failure to cancel is logged, the first error stands."""
        try:
            self.cancel(job_id, deadline=Deadline(CANCEL_SECONDS))
        except NarratorError as exc:
            log.warning("runpod job not cancelled", extra={"request_id": job_id, "error": str(exc)})

    def _send(self, call: Call, deadline: Deadline | None) -> Any:
        budget = deadline or Deadline(self.request_timeout * 2)
        return send(self._http, self.endpoint_id, call, budget, self.retry, self.request_timeout)


def finished(job: RemoteJob, endpoint_id: str) -> RemoteJob:
    """A terminal job: itself when COMPLETED, else the error its status means."""
    if job.status == COMPLETED:
        return job
    where = f"RunPod job {job.id} on endpoint {endpoint_id}"
    if job.status == FAILED:
        raise RemoteJobFailed(f"{where} failed: {job.error or _output_error(job.output) or 'no error given'}")
    if job.status == CANCELLED:
        raise JobCancelled(f"{where} was cancelled")
    if job.status == TIMED_OUT:
        raise RemoteJobTimedOut(f"{where} ran past the endpoint's execution timeout (executionTimeout) "
                                "and RunPod stopped it")
    raise RemoteJobFailed(f"{where} ended in an unknown state {job.status!r}")


def _output_error(output: Any) -> str | None:
    return str(output["error"]) if isinstance(output, Mapping) and output.get("error") else None
