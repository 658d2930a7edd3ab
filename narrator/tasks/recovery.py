"""Give back the messages a worker's previous life took and never acknowledged.

With ``task_acks_late`` on the Redis transport, a message a worker takes waits in
kombu's ``unacked`` hash until it is acknowledged. When the whole worker dies
(SIGKILL, the OOM killer, a lost node) nothing rejects it: the transport hands it
out again only once the visibility timeout has passed (``chunk_time_limit * 2 + 60``,
25 minutes by default) and a sweep notices. A pool child dying alone is different:
its parent requeues the message at once (``task_reject_on_worker_lost``).

A worker restarted under the same node name (a container restart keeps its
hostname) knows better: a task its previous life STARTED whose message is still
unacknowledged can only be orphaned, since two live workers never share a node
name. Before it consumes anything, it puts those messages back at the head of
their queues. Tasks are idempotent, so should a second live worker ever share
the name, the cost is a duplicate run, not a wrong result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)


def task_id_of(payload: bytes | str) -> str | None:
    """The task id in an ``unacked`` entry (``[message, exchange, routing_key]``), if it has one."""
    try:
        message = json.loads(payload)[0]
        task_id = message["headers"]["id"]
    except (ValueError, LookupError, TypeError):
        return None
    return task_id if isinstance(task_id, str) else None


def orphaned(entries: Mapping[bytes, bytes], meta: Callable[[str], Mapping[str, Any]], hostname: str) -> list[bytes]:
    """Delivery tags of the entries whose task this node STARTED in an earlier life."""
    tags = []
    for tag, payload in entries.items():
        task_id = task_id_of(payload)
        if task_id is None:
            continue
        state = meta(task_id)
        started_by = state.get("result")
        if state.get("status") != "STARTED" or not isinstance(started_by, Mapping):
            continue
        if started_by.get("hostname") == hostname:
            tags.append(tag)
    return tags


def restore_orphans(app: Celery, hostname: str) -> int:
    """Requeue what ``hostname`` held when it died; how many messages. Redis brokers only."""
    if not str(app.conf.broker_url).startswith(("redis://", "rediss://")) or app.backend is None:
        return 0
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            qos, client = channel.qos, channel.client  # type: ignore[attr-defined]  # redis Channel; stubs: StdChannel
            entries = client.hgetall(qos.unacked_key)
            tags = orphaned(entries, lambda tid: app.backend.get_task_meta(tid, cache=False), hostname)
            for tag in tags:
                # Where the visibility sweep would put it: next in line.
                qos.restore_by_tag(tag, client=client)
    except (OperationalError, RedisError, OSError) as exc:
        # The visibility timeout still redelivers them; a worker must not refuse to start over this.
        log.warning("could not look for orphaned messages", extra={"worker": hostname, "error": str(exc)})
        return 0
    if tags:
        log.warning("requeued messages a previous run of this worker left", extra={"worker": hostname,
                                                                                  "count": len(tags)})
    return len(tags)
