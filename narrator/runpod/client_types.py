"""What RunPod's queue-based endpoint API answers, as plain dataclasses.

Shapes (https://docs.runpod.io/serverless/endpoints/operation-reference):

- ``/run``, ``/runsync``, ``/status/{id}``, ``/cancel/{id}``:
  ``{"id", "status", "delayTime"?, "executionTime"?, "output"?, "error"?}``; while the job runs,
  ``output`` is the handler's latest ``progress_update`` payload;
- ``/stream/{id}``: ``{"status", "stream": [{"output": ...}, ...]}``, the items not yet read;
- ``/health``: ``{"jobs": {"completed", "failed", "inProgress", "inQueue", "retried"},
  "workers": {"idle", "initializing", "ready", "running", "throttled", "unhealthy"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RemoteUnavailable

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})


@dataclass(frozen=True)
class RemoteJob:
    """One answer about a job: its status and, by status, its latest output or its error."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    delay_ms: int | None = None
    """Milliseconds it waited in the queue (RunPod's ``delayTime``)."""
    execution_ms: int | None = None
    """Milliseconds a worker ran it (RunPod's ``executionTime``)."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        """RunPod's own field names, for printing."""
        shown: dict[str, Any] = {"id": self.id, "status": self.status}
        for key, value in (("delayTime", self.delay_ms), ("executionTime", self.execution_ms),
                           ("output", self.output), ("error", self.error)):
            if value is not None:
                shown[key] = value
        return shown


@dataclass(frozen=True)
class EndpointHealth:
    jobs: dict[str, int] = field(default_factory=dict)
    """completed, failed, inProgress, inQueue, retried."""
    workers: dict[str, int] = field(default_factory=dict)
    """idle, initializing, ready, running, throttled, unhealthy."""

    def to_json(self) -> dict[str, Any]:
        return {"jobs": dict(self.jobs), "workers": dict(self.workers)}


def job_from(body: Any, job_id: str = "") -> RemoteJob:
    """A job answer; ``job_id`` fills in when the answer leaves its id out."""
    if not isinstance(body, Mapping) or not isinstance(body.get("status"), str):
        raise RemoteUnavailable(f"RunPod answered something that is not a job status: {_sample(body)}")
    error = body.get("error")
    return RemoteJob(
        id=str(body.get("id") or job_id),
        status=body["status"],
        output=body.get("output"),
        error=None if error is None else error if isinstance(error, str) else str(error),
        delay_ms=_int(body.get("delayTime")),
        execution_ms=_int(body.get("executionTime")),
    )


def stream_from(body: Any, job_id: str) -> tuple[RemoteJob, list[Any]]:
    """``/stream``: the job's status and the ``output`` of each new item, in order."""
    job = job_from(body, job_id)
    items = body.get("stream") or []
    if not isinstance(items, list):
        raise RemoteUnavailable(f"RunPod's /stream answer has no item list: {_sample(body)}")
    return job, [item.get("output") if isinstance(item, Mapping) else item for item in items]


def health_from(body: Any) -> EndpointHealth:
    if not isinstance(body, Mapping):
        raise RemoteUnavailable(f"RunPod's /health answer is not an object: {_sample(body)}")
    return EndpointHealth(jobs=_counts(body.get("jobs")), workers=_counts(body.get("workers")))


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int)}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _sample(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 200 else text[:197] + "..."
