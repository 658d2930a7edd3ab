"""Cancel a running chunk when its job is cancelled, whatever the broker.

Cancellation is a marker in storage (:meth:`narrator.job.store.JobStore.cancel`). Revoking
reaches only queued tasks, and a broadcast reaches a worker's main process, not the pool child
that is waiting on ComfyUI; so the child watches the marker itself while it works.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from ..engines import Engine
from ..errors import NarratorError
from ..storage import ObjectStore
from .store import JobStore

log = logging.getLogger(__name__)


@contextlib.contextmanager
def watch(
    store: ObjectStore, job_id: str, engine: Callable[[], Engine | None], interval: float = 1.0
) -> Iterator[None]:
    """While the block runs, interrupt ``engine()`` once the job's cancel marker appears."""
    done = threading.Event()
    job = JobStore(store, job_id)

    def run() -> None:
        while not done.wait(interval):
            try:
                cancelled = job.cancelled()
            except NarratorError:
                continue  # storage blip: look again next time
            if cancelled:
                current = engine()
                if current is not None:
                    # DEBUG: the task this interrupts says "job cancelled", the one line a cancel gets.
                    log.debug("cancel seen, interrupting", extra={"job_id": job_id})
                    current.cancel(job_id)
                return

    watcher = threading.Thread(target=run, name=f"cancel-watch-{job_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=interval + 1)
