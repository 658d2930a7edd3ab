"""Forget the result waiters Celery registers in a worker process that never waits.

Building a group or chord result (``synthesize`` replacing itself with the chord of
a job's chunks) registers every member with the result backend: a vine barrier calls
``AsyncResult.then``, which adds the result to the backend's pending results, and the
Redis backend subscribes to the member's result channel. Only a process that waits on
results reads them, and a worker never does (Celery forbids waiting inside a task).
Left alone, every chunk a CPU worker process ever fanned out stays in its memory (an
AsyncResult, promises, weak references) and subscribed in Redis, its result message
unread, for the life of the process: measured, some 2.5 KB of Python objects and four
subscriptions per 4-chunk job, and the pymalloc arenas they pin.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def forget_waiters(backend: Any) -> int:
    """Drop every pending result and result subscription of this process; how many results."""
    pending = getattr(backend, "_pending_results", None)
    consumer = getattr(backend, "result_consumer", None)
    if not pending or consumer is None:
        return 0
    count = sum(len(mapping) for mapping in pending)
    if not count:
        return 0
    for mapping in pending:
        mapping.clear()
    subscribed = getattr(consumer, "subscribed_to", None)
    if isinstance(subscribed, set):
        subscribed.clear()
    try:
        # Closing the subscriber connection drops every subscription and the messages queued
        # on it; the next consume_from (none, in a worker) would open a new one.
        consumer.stop()
    except (RedisError, OSError) as exc:
        log.warning("could not close the result subscriber", extra={"error": str(exc)})
    return count
