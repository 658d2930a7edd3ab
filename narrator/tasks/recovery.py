"""Give back the messages a worker's previous life took and never acknowledged.

With ``task_acks_late`` on the Redis transport, a message a worker takes waits in
kombu's ``unacked`` hash until it is acknowledged. When the whole worker dies
(SIGKILL, the OOM killer, a lost node) nothing rejects it: the transport hands it
out again only once the visibility timeout has passed (``chunk_time_limit * 2 + 60``,
25 minutes by default) and a sweep notices. A pool child dying alone is different:
its parent requeues the message at once (``task_reject_on_worker_lost``).

A worker restarted under the same node name (a container restart keeps its
hostname; ``narrator worker``'s default name is a per-host slot it gets back, see
ops/node_name.py) knows better: a task its previous life STARTED whose message is
still unacknowledged can only be orphaned, provided no live worker answers to that
name. So a worker first asks the broker whether one does (:func:`name_in_use`) and
refuses to start if so; only then, before it consumes anything, does it put its
previous life's messages back at the head of their queues.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)

#: How long a live worker has to answer a ping to its node name. Its main process answers
#: from its event loop (a chunk runs in a pool child), so a healthy worker replies in milliseconds.
PING_TIMEOUT = 1.0


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


def name_in_use(app: Celery, hostname: str, timeout: float = PING_TIMEOUT) -> bool | None:
    """Whether a live worker answers to ``hostname``; None when the broker cannot tell (no broadcast, down)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        with app.connection_for_write() as conn:
            if "fanout" not in conn.transport.implements.exchange_type:
                return None  # SQS: no remote control, so nobody could answer
            conn.ensure_connection(max_retries=1)
            replies = app.control.ping(destination=[hostname], timeout=timeout, limit=1, connection=conn)
    except (OperationalError, RedisError, OSError) as exc:
        log.warning("could not ask whether a live worker has this name", extra={"worker": hostname,
                                                                              "error": str(exc)})
        return None
    return any(hostname in reply for reply in replies or ())
