"""A chunk whose pool process died goes back next in line, not to the back of its queue (Redis).

When a pool process dies mid-task (the OOM killer, a segfault in a native library), Celery
requeues its message (``task_reject_on_worker_lost``) by rejecting it, and kombu's Redis
transport puts a rejected message at the *back* of its list: the chunk would wait behind
every chunk queued since, and its job finish last. This request class puts it where a
dead worker's messages go on recovery or the visibility sweep: at the head, next in line.
Other brokers, and every other reject, go through Celery's own.
"""

from __future__ import annotations

import logging

from celery.worker.request import Request
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class NextInLine(Request):
    def reject(self, requeue: bool = False) -> None:
        if requeue and not self.acknowledged and self._restore_at_head():
            self.acknowledged = True
            self.send_event("task-rejected", requeue=True)
            return
        super().reject(requeue=requeue)

    def _restore_at_head(self) -> bool:
        message = self.message
        qos = getattr(getattr(message, "channel", None), "qos", None)
        if not isinstance(qos, kombu_redis.QoS):
            return False
        try:
            qos.restore_by_tag(message.delivery_tag, leftmost=False)  # rpush: the end BRPOP takes from
        except (RedisError, OSError) as exc:
            log.warning("could not requeue at the head", extra={"task_id": self.id, "error": str(exc)})
            return False
        virtual.QoS.ack(qos, message.delivery_tag)  # the channel's own bookkeeping, as its reject does
        log.info("requeued next in line after its process was lost", extra={"task_id": self.id})
        return True
