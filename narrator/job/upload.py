"""Publish a joined job: the final object, captions, URLs, the result record."""

from __future__ import annotations

import logging
import time

from ..errors import ObjectNotFound
from ..result import ChapterResult, JobResult, Metrics, Verification
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
        references=manifest.references,
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
        captions={kind: store.presigned_url(key, expires) for kind, key in captions.items()},
        verification=_verification(job, manifest),
        title=manifest.book.title if manifest.book else None,
        author=manifest.book.author if manifest.book else None,
        chapters=_chapters(job, manifest, expires),
    )
    record = job.save_result(result)
    log.info("published", extra={"job_id": job.job_id, "key": final, "seconds": result.duration_seconds})
    return record


def _chapters(job: JobStore, manifest: Manifest, expires: int) -> list[ChapterResult]:
    if manifest.book is None:
        return []
    chapters = [ChapterResult.model_validate(c) for c in job.get_json(job.chapters_key)]
    if manifest.request.output.split != "chapters":
        return chapters
    out = []
    for chapter in chapters:
        key = job.chapter_file_key(chapter.number, manifest.format)
        captions = job.chapter_file_key(chapter.number, "vtt")
        out.append(chapter.model_copy(update={"key": key, "url": job.objects.presigned_url(key, expires),
                                              "captions_url": job.objects.presigned_url(captions, expires)}))
    return out


def _verification(job: JobStore, manifest: Manifest) -> Verification | None:
    if manifest.verify == "off":
        return None
    try:
        return Verification.model_validate(job.get_json(job.verification_key))
    except ObjectNotFound:
        return None  # joined before checks existed (a job resumed across an upgrade)
