"""One chunk sent to a RunPod endpoint and back: the wire format of the ``runpod`` engine.

The engine (narrator.engines.runpod) puts the chunk's voices in the shared bucket, posts
``{"chunk": ChunkJob}`` to an endpoint running narrator's GPU image, and reads the audio
back from the key it named. The endpoint's handler (chunk mode, narrator.runpod.chunk_mode)
synthesizes with its own engine and answers ``{"chunk": ChunkDone}``, or ``{"chunk_error":
ChunkError}`` when it understood the job and it failed: a COMPLETED RunPod job carries that
verdict unchanged, where a FAILED one would only carry a string. FAILED is left for a
worker that crashed, which is worth another try.

Keys live under the job's own prefix (``jobs/<id>/runpod/``), so ``narrator gc`` removes
them with the job, and the endpoint writes nowhere else.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidRequest

#: Where the engine and the endpoint may read and write: a job's own runpod folder.
KEY = re.compile(r"^jobs/[a-f0-9]{32}/runpod/[A-Za-z0-9._-]+$")


def voice_key(job_id: str, digest: str) -> str:
    return f"jobs/{job_id}/runpod/voice-{digest}.wav"


def output_key(job_id: str, index: int, token: str) -> str:
    return f"jobs/{job_id}/runpod/chunk-{index:05d}-{token}.flac"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChunkJob(_Wire):
    model: str
    """The model the endpoint must run (its own model file by that name)."""
    text: str = Field(min_length=1)
    """Written in the model's speaker format, speakers named by slot (as SynthesisInput.text)."""
    speakers: tuple[int, ...] = (1,)
    voices: dict[int, str] = Field(default_factory=dict)
    """Job speaker -> key of its normalised voice in the shared bucket."""
    params: dict[str, Any] = Field(default_factory=dict)
    output_key: str
    job_id: str = ""
    index: int = 0

    @field_validator("output_key")
    @classmethod
    def _output_inside_the_job(cls, key: str) -> str:
        return _inside(key)

    @field_validator("voices")
    @classmethod
    def _voices_inside_the_job(cls, voices: dict[int, str]) -> dict[int, str]:
        for key in voices.values():
            _inside(key)
        return voices

    @classmethod
    def parse(cls, data: Any) -> ChunkJob:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "chunk"
            raise InvalidRequest(err["msg"].removeprefix("Value error, "), field=f"chunk.{where}") from None


class ChunkDone(_Wire):
    output_key: str
    seconds: float
    sample_rate: int
    model: str


class ChunkError(_Wire):
    message: str
    retryable: bool
    cancelled: bool = False
    """The job was cancelled (its marker in the shared bucket): stopped, or never started."""


def _inside(key: str) -> str:
    if not KEY.match(key) or ".." in key:
        raise ValueError(f"{key!r} is not a key under jobs/<id>/runpod/")
    return key
