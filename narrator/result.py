"""What a finished job returns, and how far a running one has got."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    execution_time: float = 0.0
    """Seconds from staging to upload."""
    model: str = ""
    sample_rate: int = 0
    chunks_synthesized: int = 0
    cache_hits: int = 0


class JobResult(BaseModel):
    """A finished job. Seed-era RunPod fields first, then the new ones."""

    model_config = ConfigDict(extra="forbid")

    success: bool = True
    audio_b64: str | None = None
    duration_seconds: float
    seed_used: int | None = None
    reference_used: bool = False
    text_length: int
    metrics: Metrics
    job_id: str
    audio_url: str | None = None
    output_key: str
    format: str
    sample_rate: int
    chunks: int
    captions_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Progress(BaseModel):
    """How far a job has got; readable from any process that sees the storage."""

    job_id: str
    state: str = "PENDING"
    """PENDING, STAGED, SYNTHESIZING, JOINING, UPLOADING, SUCCESS, FAILURE, CANCELLED."""
    chunks_done: int = 0
    chunks_total: int = 0
    audio_seconds: float = 0.0
    error: str | None = None
    chunk_keys: list[str] = Field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.chunks_done / self.chunks_total if self.chunks_total else 0.0
