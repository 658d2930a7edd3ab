"""Admission: everything that can be checked about a request before work is queued.

Schema checks are in :mod:`narrator.request`; here come the checks that need the
settings and the model registry: text size, model, parameters the model binds,
voice inputs decoded as audio, URLs checked against the fetch policy.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audio
from .chunker import Chunk, chunk_text
from .errors import AudioError, FetchError, InvalidRequest
from .fetch import check_url
from .models import ModelRegistry, ModelSpec
from .request import JobRequest, VoiceInput
from .settings import Settings

FORMATS = ("wav", "flac", "mp3", "opus")


@dataclass(frozen=True)
class Admitted:
    """A request that passed admission, with what was resolved on the way."""

    request: JobRequest
    model: ModelSpec
    params: dict[str, Any]
    """The model's defaults overlaid with the request's voice settings."""
    chunks: list[Chunk]
    """The text, chunked as the model wants it (chunking is where SSML and scripts are checked)."""


def admit(data: Any, settings: Settings, registry: ModelRegistry) -> Admitted:
    request = JobRequest.parse(data)
    if len(request.text) > settings.max_text_chars:
        raise InvalidRequest(
            f"{len(request.text)} characters is over the limit of {settings.max_text_chars}", field="text"
        )
    model = _model(request, settings, registry)
    params = _params(request, model)
    for speaker, voice in request.voice_inputs().items():
        if speaker > model.speakers:
            raise InvalidRequest(f"model {model.name!r} voices at most {model.speakers} speakers", field=voice.field)
        check_voice(voice, settings)
    if request.output.url_expires and request.output.url_expires > settings.presign_max_seconds:
        raise InvalidRequest(
            f"{request.output.url_expires} s is longer than the maximum of {settings.presign_max_seconds} s",
            field="output.url_expires",
        )
    if request.output.format not in FORMATS:
        raise InvalidRequest(f"unsupported format {request.output.format!r}", field="output.format")
    chunks = chunk_text(
        request.text,
        model.max_chunk_chars,
        min_chars=model.min_chunk_chars,
        normalize=request.normalize,
        speakers=request.speakers,
        max_speakers=model.speakers,
        ssml=request.ssml,
        language=request.language,
    )
    if not any(c.spoken.strip() for c in chunks):
        raise InvalidRequest("nothing to speak", field="text")
    return Admitted(request=request, model=model, params=params, chunks=chunks)


def _model(request: JobRequest, settings: Settings, registry: ModelRegistry) -> ModelSpec:
    name = request.model or settings.default_model
    spec = registry.get(name)
    if spec is None:
        known = ", ".join(registry.names()) or "none"
        raise InvalidRequest(f"unknown model {name!r} (available: {known})", field="model")
    return spec


def _params(request: JobRequest, model: ModelSpec) -> dict[str, Any]:
    given = request.voice_settings.given()
    supported = model.supported_parameters
    for name in given:
        if name not in supported:
            offered = ", ".join(sorted(supported)) or "none"
            raise InvalidRequest(
                f"model {model.name!r} does not support {name} (it supports: {offered})",
                field=f"voice_settings.{name}",
            )
    defaults = {k: v for k, v in model.defaults.items() if k in supported}
    return {**defaults, **given}


def check_voice(voice: VoiceInput, settings: Settings) -> None:
    """Reject a voice that cannot be used, without fetching anything."""
    try:
        if voice.kind == "url":
            check_url(voice.value, field=voice.field, allow=settings.fetch_allow)
        elif voice.kind == "name":
            if named_voice_path(voice.value, settings) is None:
                raise InvalidRequest(f"no stored voice named {voice.value!r}", field=voice.field)
        else:
            audio.decode(decode_base64(voice, settings), field=voice.field, max_seconds=settings.max_voice_seconds)
    except (AudioError, FetchError) as exc:
        raise InvalidRequest(str(exc), field=voice.field) from exc


def decode_base64(voice: VoiceInput, settings: Settings) -> bytes:
    value = voice.value
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    # Cap before decoding: base64 is 4 characters per 3 bytes.
    if len(value) > settings.max_voice_bytes * 4 // 3 + 4:
        raise InvalidRequest(f"voice is larger than {settings.max_voice_bytes} bytes", field=voice.field)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("not valid base64", field=voice.field) from None
    if not data:
        raise InvalidRequest("decodes to nothing", field=voice.field)
    return data


def named_voice_path(name: str, settings: Settings) -> Path | None:
    folder = settings.workflows_dir / "voices"
    for ext in (".wav", ".flac"):
        path = folder / f"{name}{ext}"
        # The name matched VOICE_NAME (no separators), so it cannot leave the folder.
        if path.is_file():
            return path
    return None

