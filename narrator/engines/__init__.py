"""Engines turn one chunk into audio. Which one a model uses is in its model file."""

from __future__ import annotations

import threading

from ..errors import ModelError
from ..models import ModelSpec
from ..settings import Settings
from .base import Audio, Clip, Engine, SynthesisInput, Voice

__all__ = ["Audio", "Clip", "Engine", "SynthesisInput", "Voice", "get_engine", "new_engine", "running_engines"]

_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()


def get_engine(spec: ModelSpec, settings: Settings) -> Engine:
    """The process-wide engine for a model: models load once per worker, not per chunk."""
    key = (spec.name, settings.comfy_url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _make(spec, settings)
            _engines[key] = engine
        return engine


def new_engine(spec: ModelSpec, settings: Settings) -> Engine:
    """An engine of the caller's own, not the process-wide one: close it when done."""
    return _make(spec, settings)


def _make(spec: ModelSpec, settings: Settings) -> Engine:
    if spec.engine == "embedded":
        from .embedded import EmbeddedEngine  # piper-tts (GPL-3.0) only when asked for

        return EmbeddedEngine(spec)
    if spec.engine == "comfyui":
        from .comfyui import ComfyEngine

        return ComfyEngine(spec, settings)
    raise ModelError(f"model {spec.name!r}: unknown engine {spec.engine!r}")


def running_engines() -> list[Engine]:
    """The engines this process has loaded (for cancel and shutdown)."""
    with _lock:
        return list(_engines.values())
