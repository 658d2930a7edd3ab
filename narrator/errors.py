"""The one error tree.

Every error narrator raises is a :class:`NarratorError`. Two branches say what a
caller should do with it: :class:`RetryableError` (transient: try again later,
with backoff) and :class:`PermanentError` (the same call will fail the same way).
Third-party errors (boto3, HTTP, websocket, soundfile) are translated into this
tree where they enter, so nothing above the edges catches foreign exceptions.

Constructors take the message as their only positional argument so that Celery
can rebuild them from a serialized result on the other side of the broker.
"""

from __future__ import annotations


class NarratorError(Exception):
    """Root of every error narrator raises."""

    retryable: bool = False


class RetryableError(NarratorError):
    """Transient: the same call may succeed later."""

    retryable = True


class PermanentError(NarratorError):
    """The same call will fail the same way; do not retry."""


class InvalidRequest(PermanentError):
    """A request failed validation. ``field`` names the offending input."""

    def __init__(self, message: str, field: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field and not message.startswith(f"{field}:") else message)


class ModelError(PermanentError):
    """A model file is missing, malformed, or does not bind to its workflow."""


class AudioError(PermanentError):
    """Audio could not be decoded, is not audio, or breaks a limit."""


class StorageError(RetryableError):
    """Object storage failed in a way that may pass (5xx, throttling, network)."""


class ObjectNotFound(PermanentError):
    """The requested object does not exist."""


class StoragePermanentError(PermanentError):
    """Object storage refused the call (credentials, missing bucket, bad key)."""


class FetchError(PermanentError):
    """A URL input could not be fetched or is not allowed."""


class FetchUnavailable(RetryableError):
    """A URL input could not be fetched for a reason that may pass."""


class EngineUnavailable(RetryableError):
    """The synthesis backend is down, overloaded or timed out."""


class EngineFailed(PermanentError):
    """The synthesis backend rejected or failed the work."""


class JobFailed(PermanentError):
    """A job ended in failure; the message carries the cause."""


class JobTimeout(NarratorError):
    """Waiting for a job ran past its deadline."""


class JobCancelled(PermanentError):
    """The job was cancelled."""


class JobNotFound(PermanentError):
    """No job with that id is known."""


class WorkerNotReady(PermanentError):
    """A worker this process depends on failed to start, died, or was not ready in time."""


class ConfigurationError(PermanentError):
    """The settings cannot work as given. ``variable`` names the one to change."""

    def __init__(self, message: str, variable: str = "") -> None:
        self.variable = variable
        prefixed = variable and not message.startswith(f"{variable}:")
        super().__init__(f"{variable}: {message}" if prefixed else message)


# -- RunPod's serverless API, as a client (narrator.runpod.client) ---------------------------


class RemoteUnauthorized(PermanentError):
    """RunPod refused the API key (401/403)."""


class EndpointNotFound(PermanentError):
    """RunPod has no endpoint with that id (404)."""


class RemoteJobNotFound(JobNotFound):
    """RunPod does not know the job: a wrong id, or its result expired."""


class RemoteUnavailable(RetryableError):
    """RunPod's API did not answer, or answered 5xx."""


class RemoteRateLimited(RetryableError):
    """RunPod answered 429. ``retry_after``: the seconds it asked for, when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RemoteJobFailed(PermanentError):
    """The remote job ended FAILED; the message carries RunPod's (the handler's) error."""


class RemoteJobTimedOut(PermanentError):
    """RunPod stopped the job at the endpoint's execution timeout (TIMED_OUT)."""


class RemoteJobNotStarted(JobTimeout):
    """No worker took the job within the time allowed; it was cancelled."""


class RemoteDeadlineExceeded(JobTimeout):
    """The remote job ran past the caller's deadline; it was cancelled."""
