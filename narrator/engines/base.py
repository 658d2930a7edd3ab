"""The engine interface: synthesize one chunk of text into audio."""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..audio.encode import encode
from ..audio.types import Audio
from ..errors import InvalidRequest
from ..models import ModelSpec


@dataclass(frozen=True)
class Voice:
    """A reference voice, normalised to mono WAV bytes; ``digest`` names it everywhere."""

    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class SynthesisInput:
    text: str
    """The chunk text, already written in the model's speaker format, speakers named by slot."""
    voices: Mapping[int, Voice] = field(default_factory=dict)
    """The job's speaker number (1-based) -> reference voice; empty for the model's own voice."""
    speakers: tuple[int, ...] = (1,)
    """``speakers[j - 1]`` is the job speaker whose voice slot j carries (``narrator.chunker.slots``)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The job's resolved settings (the manifest's): the model's defaults under the request's,
    converted and checked once at admission by :meth:`Engine.check_params`. Engines use them as
    they are; a setting absent here is left to the model itself."""
    job_id: str = ""
    index: int = 0


class CancelledJobs:
    """The jobs an engine was told to cancel, lately: a chunk of one that was waiting (for the engine,
    or for its request to be sent) must not start after the cancel. Thread-safe; recent ones suffice."""

    def __init__(self, kept: int = 256) -> None:
        self._kept = kept
        self._jobs: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job_id: str) -> None:
        with self._lock:
            self._jobs[job_id] = None
            while len(self._jobs) > self._kept:
                self._jobs.popitem(last=False)

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return bool(job_id) and job_id in self._jobs


@dataclass(frozen=True)
class Clip:
    """A chunk's audio as the pipeline stores it: mono FLAC at the model's rate, and its length."""

    flac: bytes
    seconds: float

    @classmethod
    def of(cls, audio: Audio) -> Clip:
        return cls(encode(audio, "flac"), audio.duration)


class Engine(ABC):
    """One per model per process; loads its model once."""

    @classmethod
    def check_params(cls, spec: ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` (the model's defaults under a request's settings) by this engine's rules.

        Converted to what the model takes and checked against its limits, without loading a
        model or opening a connection: admission calls it once per job and the manifest keeps
        the result. ``InvalidRequest`` names ``voice_settings.<param>``. This base refuses the
        settings the model does not support; engines narrow further.
        """
        supported = spec.supported_parameters
        # Speed 1.0 asks for nothing: seed-era clients send it to every model.
        params = {k: v for k, v in params.items() if not (k == "speed" and k not in supported and v == 1.0)}
        for name in params:
            if name not in supported:
                offered = ", ".join(sorted(supported)) or "none"
                raise InvalidRequest(
                    f"model {spec.name!r} does not support {name} (it supports: {offered})",
                    field=f"voice_settings.{name}",
                )
        return dict(params)

    @abstractmethod
    def synthesize(self, item: SynthesisInput) -> Audio: ...

    def render(self, item: SynthesisInput) -> Clip:
        """The chunk ready to store. Engines whose output is already FLAC pass it through."""
        return Clip.of(self.synthesize(item))

    def warm_up(self) -> None:
        """Pay the model load before the first real chunk."""

    def cancel(self, job_id: str) -> None:
        """Stop work for ``job_id`` if this engine is running it (best effort)."""

    def close(self) -> None:
        """Release connections."""
