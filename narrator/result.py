"""What a finished job returns, and how far a running one has got."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    execution_time: float = 0.0
    """Seconds from staging to upload."""
    model: str = ""
    sample_rate: int = 0
    chunks_synthesized: int = 0
    cache_hits: int = 0


class Reference(BaseModel):
    """Which voice a speaker was given, and whether the model used it."""

    speaker: int
    source: Literal["default", "base64", "url", "stored"]
    name: str
    """A short name: the default's file, ``ref_b64_<hash>.wav``, a URL's host and file, a stored name.
    Never a credential or a signed query."""
    used: bool
    """False when the model clones no voice: it spoke in its own."""


def reference_sentence(value: Any) -> Any:
    """Results stored before ``reference_used`` was a sentence said true or false."""
    if isinstance(value, bool):
        return "Using a given reference" if value else "Using the default voice"
    return value


class ChapterResult(BaseModel):
    """A book's chapter in the output: where it starts, how long it lasts, its own file if split."""

    number: int
    """1-based in the whole book (as ``narrator chunk`` lists them)."""
    title: str
    start: float
    duration: float
    words: int = 0
    url: str | None = None
    """``output.split: chapters``: the chapter as a file of its own, and its captions."""
    key: str | None = None
    captions_url: str | None = None


class FailingChunk(BaseModel):
    """A chunk whose speech still fails its check: where it is, what it says, why it failed."""

    index: int
    start: float
    """Seconds into the output."""
    end: float
    text: str
    reasons: list[str]
    score: float | None = None


class Verification(BaseModel):
    """How a job's chunks were checked against their text (``verify``)."""

    mode: str
    """``report`` or ``retry``."""
    recogniser: str | None = None
    """What heard them; None: none for the job's language (signal checks only)."""
    checked: int
    retried: int
    """Chunks synthesized more than once."""
    attempts: int
    """Syntheses in all."""
    passed: int
    failing: list[FailingChunk] = []


class JobResult(BaseModel):
    """A finished job. Seed-era RunPod fields first, then the new ones."""

    model_config = ConfigDict(extra="forbid")

    success: bool = True
    audio_b64: str | None = None
    """The audio, base64, only in answers that inline it (narrator.job.delivery): never stored."""
    duration_seconds: float
    seed_used: int | None = None
    reference_used: str = ""
    """The seed worker's sentence: ``Using default narrator-default.flac reference``,
    ``Using base64 reference (ref_b64_1a2b3c4d.wav)``, ``Using URL reference (host/file.wav)``."""
    text_length: int
    metrics: Metrics
    job_id: str
    audio_url: str | None = None
    output_key: str
    format: str
    sample_rate: int
    chunks: int
    captions_url: str | None = None
    captions: dict[str, str] = {}
    """Every caption file's URL by kind: srt, vtt (a cue per chunk); words.srt, words.vtt,
    phrases.srt, phrases.vtt (a checked job's word times)."""
    verification: Verification | None = None
    references: list[Reference] = []
    """``reference_used`` as facts: one entry per speaker given a voice (or the default)."""
    title: str | None = None
    """A book's title (a ``document`` job); None otherwise."""
    author: str | None = None
    chapters: list[ChapterResult] = []
    """A book's chapters, in order, with their times in the output."""

    _old_reference_used = field_validator("reference_used", mode="before")(reference_sentence)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class JobState(StrEnum):
    """Where a job is, derived from its markers in storage (:class:`narrator.job.store.Markers`).

    String-valued: it is written as its name in JSON (``narrator status``, RunPod progress).
    """

    PENDING = "PENDING"
    """Queued, or unknown: nothing staged yet."""
    SYNTHESIZING = "SYNTHESIZING"
    """Staged: its chunks are being synthesized (``chunks_done`` of ``chunks_total``)."""
    UPLOADING = "UPLOADING"
    """Every chunk joined; the output is being published."""
    SUCCESS = "SUCCESS"
    """Published: the result record is stored."""
    FAILURE = "FAILURE"
    """A step failed for good; ``error`` says why."""
    CANCELLED = "CANCELLED"
    """Cancelled before it was published."""

    @property
    def final(self) -> bool:
        """The job will not change any more."""
        return self in _FINAL


_FINAL = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.CANCELLED})


class Progress(BaseModel):
    """How far a job has got; readable from any process that sees the storage."""

    job_id: str
    state: JobState = JobState.PENDING
    chunks_done: int = 0
    chunks_total: int = 0
    audio_seconds: float = 0.0
    error: str | None = None
    """Why the job failed (FAILURE, CANCELLED), from its error record."""
    chunks_checked: int = 0
    """Chunks whose speech was checked against their text (``verify``), so far."""
    chunks_retried: int = 0
    """Of those, chunks synthesized again after a failed check."""

    @property
    def fraction(self) -> float:
        return self.chunks_done / self.chunks_total if self.chunks_total else 0.0
