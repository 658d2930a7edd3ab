"""What a job says about its voices: the seed worker's ``reference_used`` sentence, and the facts.

Pure: from the request's voice inputs and the model. Names are short and safe to show: a base64
voice by a hash of its text, a URL by host and file name (no credentials, no signed query).
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ..models import ModelSpec
from ..request import VoiceInput
from ..result import Reference

_SOURCE = {"base64": "base64", "url": "url", "name": "stored"}
_LABEL = {"default": "default", "base64": "base64", "url": "URL", "stored": "stored"}


def references(inputs: dict[int, VoiceInput], model: ModelSpec) -> list[Reference]:
    """One entry per speaker the request gave a voice; the model's default when it gave none."""
    if not inputs:
        return [Reference(speaker=1, source="default", name=default_name(model), used=True)]
    return [
        Reference(speaker=speaker, source=_SOURCE[voice.kind], name=short_name(voice), used=model.voice_cloning)
        for speaker, voice in sorted(inputs.items())
    ]


def sentence(refs: list[Reference], model: ModelSpec) -> str:
    """``Using default narrator-default.flac reference``, ``Using base64 reference (ref_b64_….wav)``…"""
    if len(refs) == 1 and refs[0].source == "default":
        if model.voice_cloning:
            return f"Using default {refs[0].name} reference"
        return f"Using default voice of model {model.name} (it clones no reference)"
    described = [f"{_LABEL[r.source]} reference ({r.name})" for r in refs]
    if not model.voice_cloning:
        return f"Not using {', '.join(described)}: model {model.name} clones no voice; using its default voice"
    if len(refs) == 1:
        return f"Using {described[0]}"
    return "Using " + ", ".join(f"{d} for speaker {r.speaker}" for d, r in zip(described, refs, strict=True))


def default_name(model: ModelSpec) -> str:
    voice = model.defaults.get("voice")
    return PurePosixPath(str(voice)).name if voice else f"{model.name} voice"


def short_name(voice: VoiceInput) -> str:
    if voice.kind == "base64":
        return f"ref_b64_{hashlib.sha256(voice.value.encode()).hexdigest()[:8]}.wav"
    if voice.kind == "url":
        parts = urlsplit(voice.value)
        file = PurePosixPath(parts.path).name
        return f"{parts.hostname or ''}/{file}" if file else parts.hostname or "?"
    return voice.value
