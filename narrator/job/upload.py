"""Publish a joined job: the final object, captions, a URL, the result record."""

from __future__ import annotations

import base64
import logging
import time

from ..result import JobResult, Metrics
from ..settings import Settings
from ..storage import ObjectStore
from . import jobdata

log = logging.getLogger(__name__)


def publish(
    manifest: jobdata.Manifest,
    joined_key: str,
    duration: float,
    settings: Settings,
    store: ObjectStore,
) -> JobResult:
    job_id = manifest.job_id
    final = jobdata.output_key(job_id, manifest.format)
    # Captions first, audio last: whoever sees the final key sees a complete job.
    caption_keys = {}
    for ext in ("srt", "vtt"):
        key = jobdata.captions_key(job_id, ext)
        store.copy(jobdata.work_captions_key(job_id, ext), key)
        caption_keys[ext] = key
    store.copy(joined_key, final)
    output = manifest.request.get("output", {})
    expires = min(int(output.get("url_expires") or settings.presign_default_seconds), settings.presign_max_seconds)
    audio_b64 = _inline(store, final, output.get("audio_b64"), settings.audio_b64_max_bytes)
    done = jobdata.read_done(store, job_id)
    cache_hits = sum(d.cached for d in done.values())
    result = JobResult(
        audio_b64=audio_b64,
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
        job_id=job_id,
        audio_url=store.presigned_url(final, expires),
        output_key=final,
        format=manifest.format,
        sample_rate=manifest.sample_rate,
        chunks=len(manifest.chunks),
        captions_url=store.presigned_url(caption_keys["vtt"], expires) if "vtt" in caption_keys else None,
    )
    record = result.model_copy(update={"audio_b64": None})
    jobdata.put_json(store, jobdata.result_key(job_id), record.to_json())
    log.info("published", extra={"job_id": job_id, "key": final, "seconds": result.duration_seconds})
    return result


def _inline(store: ObjectStore, key: str, wanted: bool | None, cap: int) -> str | None:
    # Inline audio only on request: results travel through the result backend.
    if wanted is not True:
        return None
    if store.size(key) > cap:
        return None
    return base64.b64encode(store.get_bytes(key)).decode()

