"""The Celery app. Broker settings follow from idempotent chunk tasks (docs/design.md).

Each Celery app is configured once and never changed. The task app (``app``, where the
tasks are registered) is configured for the first broker the process uses: a worker's,
the CLI's, the RunPod handler's, the only one in production. A process that talks to a
second broker (tests, a backend embedding narrator) gets a producer app of its own for
it from :func:`configure`, rather than a task app reconfigured under its own pools.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from celery import Celery
from kombu import Queue

from ..settings import Settings
from . import sqs
from .names import CHUNK_TASK, CPU_QUEUE, GPU_QUEUE, NORMAL_PRIORITY, PRIORITY_STEPS

__all__ = ["CPU_QUEUE", "GPU_QUEUE", "app", "celery_config", "configure"]

app = Celery("narrator", include=["narrator.tasks.pipeline"])


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings for ``settings``; pure, so it is testable."""
    # A chunk may be redelivered after its worker dies, so the broker must hold it
    # longer than any chunk may run, or it is handed to a second worker mid-run.
    visibility = settings.chunk_time_limit * 2 + 60
    conf: dict[str, Any] = {
        "broker_url": settings.broker_url or "memory://",
        "result_backend": settings.effective_result_backend or None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": CPU_QUEUE,
        "task_queues": [Queue(CPU_QUEUE), Queue(GPU_QUEUE)],
        "task_routes": {CHUNK_TASK: {"queue": GPU_QUEUE}},
        "task_annotations": {
            CHUNK_TASK: {
                "soft_time_limit": settings.chunk_soft_time_limit,
                "time_limit": settings.chunk_time_limit,
            }
        },
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        # Results name no arguments (a request's text stays out of Redis) and live as long as the job.
        "result_extended": False,
        "result_expires": settings.job_retention,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Warm-up (model load, ComfyUI readiness) happens in the child before it takes tasks.
        "worker_proc_alive_timeout": 900 if settings.warmup_models else 60,
    }
    if settings.broker_url.startswith(("redis://", "rediss://")):
        conf["task_default_priority"] = NORMAL_PRIORITY
        conf["broker_transport_options"]["priority_steps"] = list(PRIORITY_STEPS)
    if sqs.is_sqs(settings.broker_url):
        conf["broker_transport_options"] = sqs.transport_options(settings, visibility)
    return conf


_lock = threading.Lock()
_task_app_key: str | None = None
_producers: dict[str, Celery] = {}


def configure(settings: Settings) -> Celery:
    """The Celery app for ``settings``: the task app, configured once, or a producer app of their own."""
    global _task_app_key
    sqs.check(settings)
    conf = celery_config(settings)
    key = _key(conf)
    with _lock:
        if _task_app_key is None:
            app.conf.update(conf)
            _task_app_key = key
        if key == _task_app_key:
            return app
        producer = _producers.get(key)
        if producer is None:
            producer = Celery("narrator", set_as_current=False)
            producer.conf.update(conf)
            _producers[key] = producer
        return producer


def _key(conf: dict[str, Any]) -> str:
    return json.dumps(conf, sort_keys=True, default=str)
