"""Stage a job from its admission: store its voices, write its chunks and settings into its manifest.

Staging adds nothing to what admission resolved (the settings, the chunks, the decoded
base64 voices) but what needs the network or storage: fetched and stored voices,
normalised, and the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal, cast

from .. import audio
from ..chunker import speaker_text
from ..errors import ConfigurationError, InvalidRequest
from ..models import ModelSpec
from ..request import VoiceInput
from ..settings import Settings
from ..storage import ObjectStore
from . import references
from .admission import Admitted, decode_base64, named_voice_path
from .fetch import fetch
from .store import BookInfo, ChapterInfo, ChunkEntry, JobStore, Manifest, stored_request

log = logging.getLogger(__name__)


def stage(job_id: str, admitted: Admitted, settings: Settings, store: ObjectStore) -> Manifest:
    request, model = admitted.request, admitted.model
    job = JobStore(store, job_id)
    voices: dict[int, str] = {}
    voice_digests: dict[int, str] = {}
    for speaker, voice in sorted(request.voice_inputs().items()):
        # A base64 voice was decoded (and checked) at admission: it comes with the admission.
        decoded = admitted.voices.get(speaker) if voice.kind == "base64" else None
        if decoded is not None:
            data = audio.normalise_decoded(decoded, field=voice.field, sample_rate=model.sample_rate)
        else:
            data = audio.normalise_voice(
                load_voice(voice, settings),
                field=voice.field,
                max_seconds=settings.max_voice_seconds,
                sample_rate=model.sample_rate,
            )
        # A model without cloning accepts a voice (checked as audio above) and does not use it.
        if model.voice_cloning:
            voices[speaker] = job.put_voice(speaker, data)
            voice_digests[speaker] = hashlib.sha256(data).hexdigest()
    chunks = chunk_entries(admitted, voice_digests)
    refs = references.references(request.voice_inputs(), model)
    manifest = Manifest(
        job_id=job_id,
        request=stored_request(request),
        model=model.name,
        params=admitted.params,  # resolved and checked at admission; engines use them as they are
        voices=voices,
        reference_used=references.sentence(refs, model),
        references=refs,
        seed_used=admitted.params.get("seed"),
        text_length=len(admitted.text),
        format=request.output.format,
        sample_rate=request.output.sample_rate or model.sample_rate,
        chunks=chunks,
        verify=(mode := verify_mode(request.verify, settings, model)),
        verify_attempts=model.verify_attempts if mode == "retry" else 1,
        book=book_info(admitted, chunks, job),
    )
    job.save_manifest(manifest)
    log.info("staged", extra={"job_id": job_id, "chunks": len(chunks), "model": model.name})
    return manifest


def book_info(admitted: Admitted, entries: list[ChunkEntry], job: JobStore) -> BookInfo | None:
    """A book's tags and chapters (those with something to say), its cover stored beside the job."""
    book = admitted.book
    if book is None:
        return None
    firsts: dict[int, int] = {}
    for entry in entries:
        if entry.chapter is not None:
            firsts.setdefault(entry.chapter, entry.index)
    chapters = [
        ChapterInfo(title=c.title, number=c.number, words=c.words, first_chunk=firsts[i])
        for i, c in enumerate(book.chapters) if i in firsts
    ]
    if book.cover is not None:
        job.objects.put_bytes(job.cover_key, book.cover, book.cover_type or "application/octet-stream")
    return BookInfo(title=book.title, author=book.author, language=book.language,
                    cover_type=book.cover_type if book.cover is not None else None, chapters=chapters)


def verify_mode(asked: str | None, settings: Settings, model: ModelSpec) -> Literal["off", "report", "retry"]:
    """The request's ``verify``, else the deployment's (NARRATOR_VERIFY), else the model's."""
    chosen = asked or settings.verify or model.verify
    if chosen not in ("off", "report", "retry"):
        raise ConfigurationError(f"NARRATOR_VERIFY: {chosen!r} is not off, report or retry", variable="NARRATOR_VERIFY")
    return cast(Literal["off", "report", "retry"], chosen)


def chunk_entries(admitted: Admitted, voice_digests: dict[int, str]) -> list[ChunkEntry]:
    """Manifest entries for the chunks that have something to say, renumbered."""
    model = admitted.model
    workflow_digest = _workflow_digest(model)
    entries: list[ChunkEntry] = []
    for position, c in enumerate(admitted.chunks):
        chapter = admitted.chapter_of[position] if admitted.chapter_of else None
        if not c.spoken.strip():
            # Nothing to say (an emoji, a rule line): keep its pause on the chunk before.
            if entries and c.pause_ms:
                entries[-1] = entries[-1].model_copy(update={"pause_ms": max(entries[-1].pause_ms or 0, c.pause_ms)})
            continue
        text = speaker_text(c, model.speaker_format)
        params = dict(admitted.params)
        if c.speed is not None and "speed" in model.supported_parameters:
            params["speed"] = round(float(params.get("speed", 1.0)) * c.speed, 4)
        digest = chunk_digest(model, workflow_digest, voice_digests, c.slots.speakers, text, params)
        entries.append(
            ChunkEntry(
                index=len(entries),
                text=text,
                caption=" ".join(c.text.split()),
                start=c.start,
                end=c.end,
                boundary=str(c.boundary),
                speaker=c.speaker,
                pause_ms=c.pause_ms,
                params=params if params != admitted.params else None,
                digest=digest,
                chapter=chapter,
            )
        )
    if not entries:
        raise InvalidRequest("nothing to speak", field="text")
    # The last spoken chunk ends the recording, whatever followed it in the text.
    entries[-1] = entries[-1].model_copy(update={"boundary": "end"})
    return entries


def load_voice(voice: VoiceInput, settings: Settings) -> bytes:
    if voice.kind == "url":
        return fetch(
            voice.value,
            field=voice.field,
            allow=settings.fetch_allow,
            max_bytes=settings.max_voice_bytes,
            connect_timeout=min(10.0, settings.fetch_timeout),
            total_timeout=settings.fetch_timeout,
        )
    if voice.kind == "name":
        path = named_voice_path(voice.value, settings)
        if path is None:
            raise InvalidRequest(f"no stored voice named {voice.value!r}", field=voice.field)
        return Path(path).read_bytes()
    return decode_base64(voice, settings)


def chunk_digest(
    model: ModelSpec,
    workflow_digest: str,
    voices: dict[int, str],
    speakers: tuple[int, ...],
    text: str,
    params: dict[str, Any],
) -> str:
    """Everything that decides a chunk's audio, hashed: equal digests mean equal audio.

    ``voices``: the job's speaker -> voice digest; ``speakers[j - 1]``: the job speaker voice
    slot j carries. The text names slots, not speakers, so two speakers saying the same
    sentence differ only in which voice the slots carry: that must be in the digest.
    """
    material = {
        "model": model.name,
        "engine": model.engine,
        "workflow": workflow_digest,
        "sample_rate": model.sample_rate,
        # Per slot, its speaker (defaults differ by speaker: voice_N) and that speaker's voice;
        # no other voice reaches the model (the engine gives unused slots the model's default).
        "slots": [[speaker, voices.get(speaker)] for speaker in speakers],
        "text": text,
        "params": params,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _workflow_digest(model: ModelSpec) -> str:
    path = model.workflow_path()
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()
