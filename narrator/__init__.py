"""narrator: long text in, one audio file in object storage out."""

from .errors import NarratorError
from .request import JobRequest
from .result import JobResult, Progress

__all__ = ["JobRequest", "JobResult", "NarratorError", "Progress"]
