"""narrator: long text in, one audio file in object storage out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import InvalidRequest, JobFailed, JobTimeout, NarratorError
from .request import JobRequest
from .result import JobResult, JobState, Progress

if TYPE_CHECKING:
    from .jobs import JobHandle
    from .settings import Settings

__all__ = [
    "InvalidRequest", "JobFailed", "JobRequest", "JobResult", "JobState", "JobTimeout", "NarratorError", "Progress",
    "get", "submit",
]


def submit(request: JobRequest | dict[str, Any], settings: Settings | None = None) -> JobHandle:
    """Validate and start a job; see :func:`narrator.jobs.submit`. Celery loads only here."""
    from .jobs import submit as _submit

    return _submit(request, settings)


def get(job_id: str, settings: Settings | None = None) -> JobHandle:
    """Re-attach to a job from another process; see :func:`narrator.jobs.get`."""
    from .jobs import get as _get

    return _get(job_id, settings)
