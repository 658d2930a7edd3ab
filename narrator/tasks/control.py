"""Job control across workers: revoke a job's tasks and interrupt its running chunks."""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.control import control_command

from .. import jobdata
from ..engines import running_engines
from ..errors import JobNotFound
from ..storage import ObjectStore
from .app import app
from .pipeline import chunk_id, fanout_id, stage_id

log = logging.getLogger(__name__)


def job_task_ids(job_id: str, task_id: str, store: ObjectStore) -> list[str]:
    ids = [task_id, stage_id(job_id), fanout_id(job_id)]
    try:
        manifest = jobdata.read_manifest(store, job_id)
    except JobNotFound:
        return ids
    return ids + [chunk_id(job_id, entry.index) for entry in manifest.chunks]


def revoke_job(job_id: str, task_id: str, store: ObjectStore) -> None:
    ids = job_task_ids(job_id, task_id, store)
    app.control.revoke(ids)
    # Revoking does not stop a chunk already running on a GPU: ask its engine to interrupt.
    app.control.broadcast("narrator_cancel", arguments={"job_id": job_id})
    log.info("cancelled", extra={"job_id": job_id, "revoked": len(ids)})


@control_command(args=[("job_id", str)], signature="<job_id>")  # type: ignore[misc]
def narrator_cancel(state: Any, job_id: str) -> dict[str, Any]:
    for engine in running_engines():
        engine.cancel(job_id)
    return {"ok": f"cancel sent for {job_id}"}
