"""Is a job still alive? Decided from what a waiter sees, so waits end before their deadline.

A waiter polls storage (progress) and the result backend (the job task's state). Two
things end a wait early with a clear error: the backend unreachable for longer than a
grace period (a blip is not a failure: Redis with AOF restarts in a moment), and the
job vanished: its state went back to PENDING after it had run (the backend restarted
empty, so its queues and chord counters are gone) and storage shows no progress since.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE_STATES = frozenset({"STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE"})


@dataclass
class Liveness:
    grace: float = 30.0
    """Seconds the backend may stay unreachable before the wait gives up."""
    lost_after: float = 10.0
    """Seconds without progress, once the job has vanished, before it is called lost."""
    down_since: float | None = None
    active_seen: bool = False
    vanished: bool = False
    last_progress: object = None
    progress_at: float = 0.0

    def saw_progress(self, key: object, now: float) -> None:
        if key != self.last_progress:
            self.last_progress = key
            self.progress_at = now

    def saw_state(self, state: str, now: float) -> None:
        self.down_since = None
        if state in ACTIVE_STATES:
            self.active_seen = True
        elif state == "PENDING" and self.active_seen:
            # Once gone, gone: a chunk that was running may still report, but nothing follows it.
            self.vanished = True

    def backend_failed(self, now: float) -> bool:
        """Record a failed backend read; True once it has failed for longer than the grace."""
        if self.down_since is None:
            self.down_since = now
        return now - self.down_since >= self.grace

    def lost(self, now: float) -> bool:
        return self.vanished and now - self.progress_at >= self.lost_after
