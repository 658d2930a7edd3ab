"""The recogniser a process uses, built once from settings."""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import ConfigurationError
from ..settings import Settings
from .recogniser import Recogniser

_built: dict[tuple[str, str, str], Recogniser] = {}
_lock = threading.Lock()
CHOICES = ("auto", "pocketsphinx", "whisper")


def recogniser_kind(settings: Settings) -> str:
    """``pocketsphinx`` or ``whisper``, as ``NARRATOR_VERIFY_RECOGNISER`` resolves."""
    kind = settings.verify_recogniser
    if kind not in CHOICES:
        raise ConfigurationError(f"NARRATOR_VERIFY_RECOGNISER: {kind!r} is not one of {', '.join(CHOICES)}",
                                 variable="NARRATOR_VERIFY_RECOGNISER")
    if kind == "auto":
        return "whisper" if settings.verify_whisper_model else "pocketsphinx"
    if kind == "whisper" and not settings.verify_whisper_model:
        raise ConfigurationError("NARRATOR_VERIFY_RECOGNISER=whisper needs NARRATOR_VERIFY_WHISPER_MODEL "
                                 "(a CTranslate2 Whisper model folder)", variable="NARRATOR_VERIFY_WHISPER_MODEL")
    return kind


def recogniser_for(settings: Settings) -> Recogniser:
    """This process's recogniser (loaded on first use: pocketsphinx about 1 s, Whisper its model)."""
    kind = recogniser_kind(settings)
    key = (kind, settings.verify_whisper_model, settings.verify_device)
    with _lock:
        found = _built.get(key)
        if found is None:
            found = _build(kind, settings)
            _built[key] = found
        return found


def on_gpu(settings: Settings) -> bool:
    """Whether checks run on a GPU here: then a GPU worker checks its own chunks."""
    if recogniser_kind(settings) != "whisper" or settings.verify_device == "cpu":
        return False
    return recogniser_for(settings).device == "cuda"


def _build(kind: str, settings: Settings) -> Recogniser:
    if kind == "whisper":
        from .whisper import WhisperRecogniser

        return WhisperRecogniser(Path(settings.verify_whisper_model), device=settings.verify_device)
    from .sphinx import SphinxRecogniser

    return SphinxRecogniser()
