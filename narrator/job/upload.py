"""Publish a joined job: the final object, captions, URLs, the result record."""

from __future__ import annotations

import logging
import time

from ..result import JobResult, Metrics
from ..settings import Settings
from ..storage import ObjectStore
from .delivery import delivery
from .store import JobStore, Manifest

log = logging.getLogger(__name__)


def publish(
    manifest: Manifest,
    joined_key: str,
    duration: float,
    settings: Settings,
    store: ObjectStore,
) -> JobResult:
    """Publish and record the job; the result as stored (no inline audio: see narrator.job.delivery)."""
    job = JobStore(store, manifest.job_id)
    final, captions = job.publish_output(joined_key, manifest.format)
    expires = delivery(manifest.request.output, settings).url_expires
    done = job.done()
    cache_hits = sum(d.cached for d in done.values())
    result = JobResult(
        duration_seconds=round(duration, 3),
        seed_used=manifest.seed_used,
        reference_used=manifest.reference_used,
        text_length=manifest.text_length,
        metrics=Metrics(
            execution_time=round(time.time() - manifest.created_at, 3),
            model=manifest.model,
            sample_rate=manifest.sample_rate,
            chunks_synthesized=len(done) - cache_hits,
            cache_hits=cache_hits,
        ),
        job_id=job.job_id,
        audio_url=store.presigned_url(final, expires),
        output_key=final,
        format=manifest.format,
        sample_rate=manifest.sample_rate,
        chunks=len(manifest.chunks),
        captions_url=store.presigned_url(captions["vtt"], expires),
    )
    record = job.save_result(result)
    log.info("published", extra={"job_id": job.job_id, "key": final, "seconds": result.duration_seconds})
    return record
