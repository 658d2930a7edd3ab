"""Stage a job: resolve its voices, chunk its text, write its manifest."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from . import audio, jobdata
from .chunker import chunk_text
from .errors import InvalidRequest
from .fetch import fetch
from .models import ModelSpec
from .request import VoiceInput
from .settings import Settings
from .storage import ObjectStore
from .validation import Admitted, decode_base64, named_voice_path

log = logging.getLogger(__name__)


def stage(job_id: str, admitted: Admitted, settings: Settings, store: ObjectStore) -> jobdata.Manifest:
    request, model = admitted.request, admitted.model
    voices: dict[int, str] = {}
    voice_digests: dict[int, str] = {}
    voice = request.voice_input()
    if voice is not None:
        data = audio.normalise_voice(
            load_voice(voice, settings),
            field=voice.field,
            max_seconds=settings.max_voice_seconds,
            sample_rate=model.sample_rate,
        )
        if model.voice_cloning:
            key = jobdata.voice_key(job_id, 1)
            store.put_bytes(key, data, "audio/wav")
            voices[1] = key
            voice_digests[1] = hashlib.sha256(data).hexdigest()
    workflow_digest = _workflow_digest(model)
    chunks = []
    for c in chunk_text(request.text, model.max_chunk_chars):
        text = model.speaker_format.format(n=1, text=c.text)
        digest = chunk_digest(model, workflow_digest, voice_digests, text, admitted.params)
        chunks.append(
            jobdata.ChunkEntry(
                index=c.index, text=text, start=c.start, end=c.end, boundary=str(c.boundary), digest=digest
            )
        )
    if not chunks:
        raise InvalidRequest("nothing to speak", field="text")
    manifest = jobdata.Manifest(
        job_id=job_id,
        request=_without_inline_audio(request.to_json()),
        model=model.name,
        params=admitted.params,
        voices=voices,
        reference_used=bool(voices),
        seed_used=admitted.params.get("seed"),
        text_length=len(request.text),
        format=request.output.format,
        sample_rate=request.output.sample_rate or model.sample_rate,
        chunks=chunks,
    )
    jobdata.put_json(store, jobdata.manifest_key(job_id), manifest.model_dump(mode="json"))
    log.info("staged", extra={"job_id": job_id, "chunks": len(chunks), "model": model.name})
    return manifest


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
    model: ModelSpec, workflow_digest: str, voices: dict[int, str], text: str, params: dict[str, Any]
) -> str:
    """Everything that decides a chunk's audio, hashed: equal digests mean equal audio."""
    material = {
        "model": model.name,
        "engine": model.engine,
        "workflow": workflow_digest,
        "sample_rate": model.sample_rate,
        "voices": {str(k): v for k, v in sorted(voices.items())},
        "text": text,
        "params": params,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _workflow_digest(model: ModelSpec) -> str:
    path = model.workflow_path()
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _without_inline_audio(request: dict[str, Any]) -> dict[str, Any]:
    # The voice lives in storage now; the manifest must stay small and carry no payloads.
    out = dict(request)
    for name in ("voice", "reference_audio"):
        if name in out and not str(out[name]).startswith(("http://", "https://")) and len(str(out[name])) > 64:
            out[name] = "<inline audio>"
    return out
