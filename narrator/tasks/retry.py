"""The one retry policy of every pipeline task.

A task that fails with a retryable error (:class:`~narrator.errors.RetryableError`:
storage throttling, a broker blip, ComfyUI restarting) runs again after a backoff,
while its retries last; any other error, or the last retry's, fails the job. Every
step is idempotent (it rewrites the same objects), so running one again is safe.

The backoff doubles from one second up to a minute, and each delay is drawn between
half and all of that step: chunks that failed together (a ComfyUI restart) come back
spread out, and none comes back at once. How many retries a task gets is the run
mode's (:mod:`narrator.tasks.mode`): ``NARRATOR_CHUNK_MAX_RETRIES`` through a broker,
none in-process, where nothing could wait out a countdown.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NarratorError

BASE_SECONDS = 1.0
CAP_SECONDS = 60.0


def retry_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the run after try ``attempt`` (0 for the first run): jittered exponential backoff."""
    step = min(CAP_SECONDS, BASE_SECONDS * 2.0 ** max(0, attempt))
    return step * (0.5 + 0.5 * rand())


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    """Retries a task gets after its first run; 0: none."""

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a task whose try ``attempt`` (0 first) raised ``exc`` runs again."""
        return isinstance(exc, NarratorError) and exc.retryable and attempt < self.max_retries

    def delay(self, exc: BaseException, attempt: int, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds until the task runs again, or None: it fails with ``exc``."""
        return retry_delay(attempt, rand) if self.should_retry(exc, attempt) else None


#: In-process: no broker to hold a retry for its countdown, so a task fails with the error itself.
NO_RETRIES = RetryPolicy(0)
