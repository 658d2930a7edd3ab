"""The Celery app. Broker settings follow from idempotent chunk tasks (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue
from kombu import pools as kombu_pools

from ..settings import Settings

CPU_QUEUE = "narrator.cpu"
GPU_QUEUE = "narrator.gpu"

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
        "task_routes": {"narrator.synthesize_chunk": {"queue": GPU_QUEUE}},
        "task_annotations": {
            "narrator.synthesize_chunk": {
                "soft_time_limit": settings.chunk_soft_time_limit,
                "time_limit": settings.chunk_time_limit,
            }
        },
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "result_extended": True,
        "result_expires": 7 * 24 * 3600,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Warm-up (model load, ComfyUI readiness) happens in the child before it takes tasks.
        "worker_proc_alive_timeout": 900 if settings.warmup_models else 60,
        "task_always_eager": settings.eager,
        "task_eager_propagates": True,
        "task_store_eager_result": False,
    }
    if settings.broker_url.startswith("sqs://"):
        conf["broker_transport_options"] = {"visibility_timeout": visibility, "region": settings.s3_region}
    return conf


def configure(settings: Settings) -> Celery:
    conf = celery_config(settings)
    if app.conf.broker_url != conf["broker_url"]:
        # Celery keeps its connection pool, and kombu a process-wide producer pool per
        # connection, across conf changes: drop both, or a new broker URL reuses
        # connections to the old one (or closed ones, when an old URL comes back).
        kombu_pools.reset()
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
    if app.conf.result_backend != conf["result_backend"] and hasattr(app._local, "backend"):
        # Likewise the result backend object, cached per thread.
        del app._local.backend
    app.conf.update(conf)
    from . import runtime

    runtime.set_settings(settings)
    return app
