"""Join a job's chunk audio, in order, into one file; write its captions."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
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
        options = book_options(manifest, job)
        report = audio.join_files(
            paths,
            out,
            boundaries=[entry.boundary for entry in manifest.chunks],
            pauses_ms=[entry.pause_ms for entry in manifest.chunks],
            fmt=manifest.format,
            sample_rate=manifest.sample_rate,
            options=options,
        )
        if options is not None:
            job.put_json(job.chapters_key, chapters_record(manifest, report))
            if manifest.request.output.split == "chapters":
                split_chapters(manifest, job, paths, folder, options.tags)
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


def book_options(manifest: Manifest, job: JobStore) -> audio.JoinOptions | None:
    """A book's join: its chapters marked, and for m4b its title, author and cover as tags."""
    book = manifest.book
    if book is None:
        return None
    cover = job.objects.get_bytes(job.cover_key) if book.cover_type else None
    tags = audio.BookTags(title=book.title, author=book.author, cover=cover, cover_type=book.cover_type,
                          language=book.language)
    return audio.JoinOptions(chapters=tuple((c.first_chunk, c.title) for c in book.chapters), tags=tags)


def chapters_record(manifest: Manifest, report: audio.JoinReport) -> list[dict[str, object]]:
    """work/chapters.json: each chapter's number, title and place in the file (the result lists them)."""
    assert manifest.book is not None
    return [
        {"number": c.number, "title": c.title, "start": round(mark.start, 3),
         "duration": round(mark.end - mark.start, 3), "words": c.words}
        for c, mark in zip(manifest.book.chapters, report.chapters, strict=True)
    ]


def split_chapters(manifest: Manifest, job: JobStore, paths: list[Path], folder: Path,
                   tags: audio.BookTags | None) -> None:
    """Each chapter joined on its own, as chapters/{n}.{fmt}: the same pauses, levels and the book's
    tags (the cover read once, for the whole book's join), titled as the chapter."""
    assert manifest.book is not None
    firsts = [c.first_chunk for c in manifest.book.chapters]
    for chapter, first, end in zip(manifest.book.chapters, firsts, [*firsts[1:], len(paths)], strict=True):
        entries = manifest.chunks[first:end]
        out = folder / f"chapter-{chapter.number:03d}.{manifest.format}"
        own = replace(tags, title=chapter.title or f"Chapter {chapter.number}") if tags is not None else None
        report = audio.join_files(
            paths[first:end], out, boundaries=[e.boundary for e in entries], pauses_ms=[e.pause_ms for e in entries],
            fmt=manifest.format, sample_rate=manifest.sample_rate,
            options=audio.JoinOptions(tags=own),
        )
        job.objects.put_file(job.chapter_file_key(chapter.number, manifest.format), out,
                             audio.content_type(manifest.format))
        cues = [(start, stop, e.caption or e.text) for e, (start, stop) in zip(entries, report.spans, strict=True)]
        job.objects.put_bytes(job.chapter_file_key(chapter.number, "vtt"), audio.webvtt(cues).encode(), "text/vtt")


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
