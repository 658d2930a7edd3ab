"""Speech recognition with Whisper through faster-whisper (CTranslate2), CPU or GPU, offline.

faster-whisper and CTranslate2 are MIT-licensed; the ``whisper`` extra installs them
(``pip install 'narrator[whisper]'``). The model is a local CTranslate2 Whisper folder
(``model.bin``, ``config.json``, ``tokenizer.json``, ``preprocessor_config.json``):
nothing is fetched at run time. Whisper has no forced alignment; word times come from
the transcript (cross-attention timing, ``word_timestamps=True``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, EngineFailed, ModelError
from .recogniser import Transcript, Word

log = logging.getLogger(__name__)

VARIABLE = "NARRATOR_VERIFY_WHISPER_MODEL"
# Without tokenizer.json faster-whisper would fetch openai/whisper-tiny's from the Hub.
_REQUIRED = ("model.bin", "config.json", "tokenizer.json")


def _base(language: str) -> str:
    return language.split("-")[0].lower()


class WhisperRecogniser:
    name = "whisper"
    aligns = False

    def __init__(self, model_path: Path, device: str = "auto", compute_type: str = "default") -> None:
        try:
            import ctranslate2  # type: ignore[import-untyped]
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ModelError(f"whisper needs faster-whisper: pip install 'narrator[whisper]' ({exc})") from exc
        path = Path(model_path)
        missing = [f for f in _REQUIRED if not (path / f).is_file()]
        if not path.is_dir() or missing:
            what = (
                "does not exist"
                if not path.exists()
                else f"is not a CTranslate2 Whisper model (no {', '.join(missing)})"
            )
            raise ConfigurationError(f"{path} {what}", variable=VARIABLE)
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.device = device
        try:
            # A directory is never looked up on the Hub; local_files_only guards the rest.
            self._model: Any = WhisperModel(str(path), device=device, compute_type=compute_type, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"whisper could not load {path} on {device} ({compute_type}): {exc}") from exc
        self._languages = frozenset(self._model.supported_languages)
        # faster-whisper logs every call at INFO ("Processing audio with duration ..."): a line per chunk.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        log.info("whisper model loaded", extra={"model": str(path), "device": device})

    def speaks(self, language: str) -> bool:
        return _base(language) in self._languages

    def transcribe(self, samples: np.ndarray, language: str) -> Transcript:
        code = _base(language)
        if code not in self._languages:
            raise EngineFailed(f"whisper does not speak {language!r}")
        audio = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if not audio.size:
            return Transcript(())
        try:
            segments, _info = self._model.transcribe(
                audio,
                language=code,
                word_timestamps=True,
                beam_size=1,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            found = [w for segment in segments for w in segment.words or ()]
        except (RuntimeError, ValueError) as exc:
            raise EngineFailed(f"whisper could not transcribe: {exc}") from exc
        words = ((w.word.strip(), float(w.start), float(w.end)) for w in found)
        return Transcript(tuple(Word(text=t, start=s, end=e) for t, s, e in words if t))

    def align(self, samples: np.ndarray, words: Sequence[str], language: str) -> tuple[Word, ...] | None:
        """Whisper has no forced alignment: always None (see :attr:`aligns`)."""
        return None
