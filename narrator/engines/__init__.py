"""Engines turn one chunk into audio. Which one a model uses is in its model file."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..audio.types import Audio
from ..errors import InvalidRequest, ModelError
from ..models import ModelSpec
from ..settings import Settings
from .base import Clip, Engine, SynthesisInput, Voice

__all__ = [
    "Audio",
    "Clip",
    "Engine",
    "SynthesisInput",
    "Voice",
    "engine_class",
    "get_engine",
    "new_engine",
    "resolve_params",
    "running_engines",
]

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


def engine_class(spec: ModelSpec) -> type[Engine]:
    """The engine class a model names; importing it loads no model and opens no connection."""
    if spec.engine == "embedded":
        from .embedded import EmbeddedEngine  # the module imports piper only to build an engine

        return EmbeddedEngine
    if spec.engine == "comfyui":
        from .comfyui import ComfyEngine

        return ComfyEngine
    if spec.engine == "runpod":
        from .runpod import RunPodEngine

        return RunPodEngine
    raise ModelError(f"model {spec.name!r}: unknown engine {spec.engine!r}")


def resolve_params(spec: ModelSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """A job's settings: the model's defaults under ``given``, checked by the model's engine.

    The one place defaults are merged and values checked against the model: admission calls it
    and writes the result into the manifest, which engines then trust. A default the engine
    refuses is the model file's fault (ModelError), not the request's.
    """
    defaults = {k: v for k, v in spec.defaults.items() if k in spec.supported_parameters}
    try:
        return engine_class(spec).check_params(spec, {**defaults, **given})
    except InvalidRequest as exc:
        param = exc.field.removeprefix("voice_settings.")
        if param in defaults and param not in given:
            raise ModelError(f"model {spec.name!r}: default {param}: {exc}") from exc
        raise


def _make(spec: ModelSpec, settings: Settings) -> Engine:
    if spec.engine == "embedded":
        from .embedded import EmbeddedEngine  # piper-tts (GPL-3.0) only when asked for

        return EmbeddedEngine(spec)
    if spec.engine == "comfyui":
        from .comfyui import ComfyEngine

        return ComfyEngine(spec, settings)
    if spec.engine == "runpod":
        from .runpod import RunPodEngine

        return RunPodEngine(spec, settings)
    raise ModelError(f"model {spec.name!r}: unknown engine {spec.engine!r}")


def running_engines() -> list[Engine]:
    """The engines this process has loaded (for cancel and shutdown)."""
    with _lock:
        return list(_engines.values())
