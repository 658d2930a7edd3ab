"""The engine interface: synthesize one chunk of text into audio."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..audio.encode import encode
from ..audio.types import Audio


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
    """Voice settings after the model's defaults were applied."""
    job_id: str = ""
    index: int = 0


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
