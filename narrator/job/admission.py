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

from .. import audio
from ..chunker import Chunk, chunk_text
from ..comfy.object_info import packaged
from ..comfy.workflow import Target, check_params, load_workflow, resolve_bindings
from ..errors import AudioError, FetchError, InvalidRequest, ModelError
from ..models import ModelRegistry, ModelSpec
from ..request import JobRequest, VoiceInput
from ..settings import Settings
from .fetch import check_url

FORMATS = ("wav", "flac", "mp3", "opus")
#: What a ``data:`` URI's media type promises; the content must keep the promise.
DECLARED_AUDIO = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
}


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
    _fits_model(request, model)
    for voice in request.voice_inputs().values():
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


def _fits_model(request: JobRequest, model: ModelSpec) -> None:
    """The language and speakers the request asks for are ones the model has."""
    spoken = request.language.split("-")[0].lower()
    if model.languages and spoken not in model.languages:
        raise InvalidRequest(
            f"model {model.name!r} speaks {', '.join(model.languages)}, not {request.language!r}", field="language"
        )
    for name, number in (request.speakers or {}).items():
        if number > model.speakers:
            raise InvalidRequest(
                f"speaker {number} is more than model {model.name!r} voices ({model.speakers})",
                field=f"speakers.{name}",
            )
    for speaker, voice in request.voice_inputs().items():
        if speaker > model.speakers:
            raise InvalidRequest(f"model {model.name!r} voices at most {model.speakers} speakers", field=voice.field)


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
    if model.engine == "comfyui" and given:
        # Ranges come from the node itself (object_info), so a value the node would
        # refuse is refused here, before anything is queued.
        given = check_params(model, _targets(model), given, packaged())
    defaults = {k: v for k, v in model.defaults.items() if k in supported}
    return {**defaults, **given}


_targets_cache: dict[tuple[str, str], dict[str, Target]] = {}


def _targets(model: ModelSpec) -> dict[str, Target]:
    path = model.workflow_path()
    key = (model.name, str(path))
    if key not in _targets_cache:
        if path is None:
            raise ModelError(f"model {model.name!r} names no workflow")
        _targets_cache[key] = resolve_bindings(model, load_workflow(path), packaged())
    return _targets_cache[key]


def check_voice(voice: VoiceInput, settings: Settings) -> None:
    """Reject a voice that cannot be used, without fetching anything."""
    try:
        if voice.kind == "url":
            check_url(voice.value, field=voice.field, allow=settings.fetch_allow)
        elif voice.kind == "name":
            if named_voice_path(voice.value, settings) is None:
                raise InvalidRequest(f"no stored voice named {voice.value!r}", field=voice.field)
        else:
            audio.validate_voice(
                decode_base64(voice, settings),
                field=voice.field,
                max_seconds=settings.max_voice_seconds,
                expect=declared_format(voice),
            )
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
        # voice and voices.N take three kinds of value; say which, or "../x" reads as a base64 problem.
        hint = "" if voice.field == "reference_audio" else " (a voice is an http(s) URL, a stored voice name or base64)"
        raise InvalidRequest(f"not valid base64{hint}", field=voice.field) from None
    if not data:
        raise InvalidRequest("decodes to nothing", field=voice.field)
    return data


def declared_format(voice: VoiceInput) -> str | None:
    """The audio format a ``data:`` URI declares (``data:audio/wav;base64,...``), if it names one."""
    if not voice.value.startswith("data:"):
        return None
    media = voice.value[5:].partition(",")[0].split(";")[0].strip().lower()
    if media in ("", "application/octet-stream") or (media.startswith("audio/") and media not in DECLARED_AUDIO):
        return None  # no promise made: the content decides
    if media not in DECLARED_AUDIO:
        raise InvalidRequest(f"the data URI declares {media[:40]!r}, not audio", field=voice.field)
    return DECLARED_AUDIO[media]


def named_voice_path(name: str, settings: Settings) -> Path | None:
    folder = settings.workflows_dir / "voices"
    for ext in (".wav", ".flac"):
        path = folder / f"{name}{ext}"
        # The name matched VOICE_NAME (no separators), so it cannot leave the folder.
        if path.is_file():
            return path
    return None

