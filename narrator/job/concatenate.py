"""Join a job's chunk audio, in order, into one file; write its captions."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import audio
from ..storage import ObjectStore
from . import verify
from .store import JobStore, Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Joined:
    duration: float
    key: str
    captions: dict[str, str]
    """Caption format (srt, vtt) -> its text (also stored under work/)."""


def join_job(manifest: Manifest, store: ObjectStore) -> Joined:
    job_id = manifest.job_id
    job = JobStore(store, job_id)
    with tempfile.TemporaryDirectory(prefix=f"narrator-{job_id[:8]}-") as tmp:
        folder = Path(tmp)
        paths = []
        # Chunks go to disk, not memory: a book's chunks do not fit in RAM on a small worker.
        for entry in manifest.chunks:
            path = folder / f"{entry.index:05d}.flac"
            job.get_chunk_file(entry.index, path)
            paths.append(path)
        out = folder / f"joined.{manifest.format}"
        report = audio.join_files(
            paths,
            out,
            boundaries=[entry.boundary for entry in manifest.chunks],
            pauses_ms=[entry.pause_ms for entry in manifest.chunks],
            fmt=manifest.format,
            sample_rate=manifest.sample_rate,
        )
        key = job.put_joined(out, manifest.format, audio.content_type(manifest.format))
    cues = [
        (start, end, entry.caption or entry.text)
        for entry, (start, end) in zip(manifest.chunks, report.spans, strict=True)
    ]
    captions = {"srt": audio.srt(cues), "vtt": audio.webvtt(cues)}
    if manifest.verify != "off":
        captions.update(_checked(manifest, store, [(c.start, c.end, c.offset) for c in report.chunks]))
    for ext, text in captions.items():
        job.put_work_captions(ext, text)
    log.info("joined", extra={"job_id": job_id, "seconds": round(report.duration, 3)})
    return Joined(duration=report.duration, key=key, captions=captions)


def _checked(manifest: Manifest, store: ObjectStore, spans: list[tuple[float, float, float]]) -> dict[str, str]:
    """A checked job's report (work/verification.json) and its word and phrase captions."""
    job = JobStore(store, manifest.job_id)
    found = verify.verdicts(manifest, store)
    job.put_json(job.verification_key, verify.report(manifest, found, spans).model_dump(mode="json"))
    captions = {}
    for kind, cues in verify.word_cues(verify.joined_words(found, spans)).items():
        if cues:
            captions[f"{kind}.srt"], captions[f"{kind}.vtt"] = audio.srt(cues), audio.webvtt(cues)
    return captions
