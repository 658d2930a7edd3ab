"""Job control across workers: revoke a job's tasks and interrupt its running chunks."""

from __future__ import annotations

import logging

from celery import Celery

from ..errors import JobNotFound
from ..job.store import JobStore
from ..storage import ObjectStore
from .pipeline import chunk_id, fanout_id, stage_id

log = logging.getLogger(__name__)


def job_task_ids(job_id: str, task_id: str, store: ObjectStore) -> list[str]:
    ids = [task_id, stage_id(job_id), fanout_id(job_id)]
    try:
        manifest = JobStore(store, job_id).manifest()
    except JobNotFound:
        return ids
    return ids + [chunk_id(job_id, entry.index) for entry in manifest.chunks]


def revoke_job(job_id: str, task_id: str, store: ObjectStore, app: Celery) -> None:
    """Revoke the job's queued tasks (through ``app``, the producer's). A chunk already running
    stops on the cancel marker (narrator.job.cancel.watch), which reaches it with any broker."""
    ids = job_task_ids(job_id, task_id, store)
    app.control.revoke(ids)
    log.info("cancelled", extra={"job_id": job_id, "revoked": len(ids)})
