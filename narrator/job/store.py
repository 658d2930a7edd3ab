"""A job's records in object storage, behind one object: :class:`JobStore`.

Storage is the source of truth for a job, so any process that can see the store
(the CLI, the RunPod handler, another backend) can follow a job, whatever the
broker. Only keys and small JSON go through the broker. Nothing outside this
module builds a job's storage keys: the tasks, :class:`~narrator.jobs.JobHandle`,
the RunPod runner and the CLI all go through a :class:`JobStore`.

Layout, under ``jobs/{job_id}/``::

    request.json              a request too large for the broker, put there by submit()
    manifest.json             the staged job (:class:`Manifest`)
    staged/{chunks}           marker: staged; the chunk count is in the key
    voices/{speaker}.wav      a speaker's normalised voice
    cover                     a book's cover image (a ``document`` job)
    chunks/{index:05d}.flac   a chunk's audio
    done/{index:05d}-{ms}-{c|s}  marker: a chunk is done (its seconds, from the cache or synthesized)
    checks/{index:05d}-{n}.json   a checked chunk's attempt n (:class:`~narrator.verify.ChunkCheck`)
    checks/{index:05d}.json       the chunk's verdict: the attempt kept (:class:`~narrator.job.verify.Verdict`)
    work/joined.{fmt}         marker: the chunks are joined; work/captions.{srt,vtt} beside it,
                              and work/verification.json, work/{words,phrases}.{srt,vtt} when checked,
                              work/chapters.json for a book (its chapters' times in the file)
    output.{fmt}, output.srt, output.vtt   the published job (output.words.srt, ... when checked)
    chapters/{n:03d}.{fmt}    a book's chapter n as a file of its own (``output.split: chapters``)
    result.json               marker: SUCCESS; the :class:`~narrator.result.JobResult` record
    error.json                marker: FAILURE; the job's first failure (:class:`ErrorRecord`)
    cancelled                 marker: CANCELLED

and, shared by every job, chunk audio by content: ``cache/{digest[:2]}/{digest}.flac``.
A job's state is read from its markers alone (:class:`Markers`, one LIST).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import JobNotFound, ObjectNotFound
from ..request import JobRequest
from ..result import JobResult, JobState, Progress, Reference, reference_sentence
from ..storage import ObjectStore

#: The layout's two top-level folders: one folder per job, and chunk audio by content.
JOBS_PREFIX = "jobs/"
CACHE_PREFIX = "cache/"
JOB_ID = re.compile(r"^[a-f0-9]{32}$")
INLINE_AUDIO = "<inline audio>"
INLINE_DOCUMENT = "<inline document>"
"""What the manifest keeps of a voice given inline: the audio itself is under voices/."""


def normalise_job_id(task_id: str) -> str:
    """A job id is its entry task's id; other producers may send it with dashes."""
    job_id = task_id.replace("-", "").lower()
    if not JOB_ID.match(job_id):
        raise JobNotFound(f"not a job id: {task_id!r}")
    return job_id


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and bool(JOB_ID.match(value))


def cache_key(digest: str) -> str:
    """Chunk audio by content, shared by every job: equal digests mean equal audio."""
    return f"{CACHE_PREFIX}{digest[:2]}/{digest}.flac"


class ChunkEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    text: str
    """What the engine is given (after normalisation and speaker formatting)."""
    caption: str = ""
    """The chunk's source text, for captions."""
    start: int
    end: int
    boundary: str
    speaker: int = 1
    pause_ms: int | None = None
    params: dict[str, Any] | None = None
    """This chunk's own settings (an SSML prosody rate); None: the job's."""
    digest: str
    """Content hash of everything that decides this chunk's audio."""
    chapter: int | None = None
    """A book's chunk: its chapter (0-based in ``Manifest.book.chapters``)."""


class ChapterInfo(BaseModel):
    title: str
    number: int
    """1-based in the whole book."""
    words: int
    first_chunk: int
    """The manifest's index of the chapter's first chunk."""


class BookInfo(BaseModel):
    """A ``document`` job's book: what the output's tags and chapter marks come from."""

    title: str
    author: str
    language: str | None = None
    cover_type: str | None = None
    """The cover's media type; None: no cover (else it is stored at ``JobStore.cover_key``)."""
    chapters: list[ChapterInfo]


class Manifest(BaseModel):
    job_id: str
    request: JobRequest
    """The request as admitted, each inline voice replaced by ``<inline audio>`` (see :func:`stored_request`)."""
    model: str
    params: dict[str, Any]
    voices: dict[int, str] = Field(default_factory=dict)
    """Speaker -> storage key of its normalised voice."""
    reference_used: str = ""
    """What the result says about the voices (narrator.job.references)."""
    references: list[Reference] = Field(default_factory=list)
    _old_reference_used = field_validator("reference_used", mode="before")(reference_sentence)
    seed_used: int | None = None
    text_length: int
    format: str
    sample_rate: int
    chunks: list[ChunkEntry]
    created_at: float = Field(default_factory=time.time)
    verify: Literal["off", "report", "retry"] = "off"
    """The request's ``verify``, else the model's: whether chunks are checked (narrator.job.verify)."""
    verify_attempts: int = 1
    """Syntheses of one chunk at most ("retry"; 1 otherwise)."""
    book: BookInfo | None = None


def stored_request(request: JobRequest) -> JobRequest:
    """``request`` as the manifest keeps it: small, with no audio payloads (voices live under voices/)."""

    def keep(value: str) -> str:
        if value.strip().lower().startswith(("http://", "https://")) or len(value) <= 64:
            return value  # a URL or a stored voice's name
        return INLINE_AUDIO

    return request.model_copy(
        update={
            "voice": request.voice and keep(request.voice),
            "reference_audio": request.reference_audio and keep(request.reference_audio),
            "voices": request.voices and {k: keep(v) for k, v in request.voices.items()},
            "document": request.document and _kept_document(request.document),
        }
    )


def _kept_document(value: str) -> str:
    """A URL or ``store:KEY`` as given; base64 bytes as a placeholder (the book is in the manifest)."""
    if value.strip().lower().startswith(("http://", "https://", "store:")):
        return value
    return INLINE_DOCUMENT


class Done(BaseModel):
    model_config = ConfigDict(frozen=True)

    seconds: float
    cached: bool


class ErrorRecord(BaseModel):
    error: str
    task: str = ""
    at: float = Field(default_factory=time.time)


_VERDICT = re.compile(r"checks/(\d{5})\.json")
_ATTEMPT = re.compile(r"checks/(\d{5})-(\d+)\.json")


def parse_done(names: Iterable[str]) -> dict[int, Done]:
    """Chunk index -> its done marker, from marker keys or names (``…done/{index:05d}-{millis}-{c|s}``)."""
    done: dict[int, Done] = {}
    for name in names:
        parts = name.rsplit("/", 1)[-1].split("-")
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or parts[2] not in ("c", "s"):
            continue
        # A redelivered chunk may mark itself twice; the first marker stands.
        done.setdefault(int(parts[0]), Done(seconds=int(parts[1]) / 1000, cached=parts[2] == "c"))
    return done


@dataclass(frozen=True)
class Markers:
    """What a job's markers say: everything its state and progress need, from one LIST."""

    chunks_total: int | None = None
    """From the staged marker; None: not staged."""
    done: Mapping[int, Done] = field(default_factory=dict)
    joined: bool = False
    result: bool = False
    error: bool = False
    cancelled: bool = False
    checked: int = 0
    """Chunks with a verdict (``checks/{index}.json``)."""
    retried: int = 0
    """Chunks synthesized again after a failed check (``checks/{index}-1.json`` and later)."""

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Markers:
        """From the names of a job's objects, relative to its folder (``staged/3``, ``done/…``, ``result.json``)."""
        names = set(names)
        staged = [int(n[7:]) for n in names if n.startswith("staged/") and n[7:].isdigit()]
        return cls(
            chunks_total=max(staged) if staged else None,
            done=parse_done(n for n in names if n.startswith("done/")),
            joined=any(n.startswith("work/joined.") for n in names),
            result="result.json" in names,
            error="error.json" in names,
            cancelled="cancelled" in names,
            checked=sum(1 for n in names if _VERDICT.fullmatch(n)),
            retried=len({m.group(1) for n in names if (m := _ATTEMPT.fullmatch(n)) and m.group(2) != "0"}),
        )

    @property
    def state(self) -> JobState:
        """The one rule from markers to state. A result is final; a cancel outranks the
        failure it causes (the running tasks fail when they see it)."""
        if self.result:
            return JobState.SUCCESS
        if self.cancelled:
            return JobState.CANCELLED
        if self.error:
            return JobState.FAILURE
        if self.joined:
            return JobState.UPLOADING
        if self.chunks_total is not None:
            return JobState.SYNTHESIZING
        return JobState.PENDING


class JobStore:
    """One job's records: its layout, markers, manifest, progress, result and error.

    Cheap to make (no I/O): build one wherever a job id and an :class:`ObjectStore` meet.
    """

    def __init__(self, store: ObjectStore, job_id: str) -> None:
        if not JOB_ID.match(job_id):
            raise JobNotFound(f"not a job id: {job_id!r}")
        self.objects = store
        self.job_id = job_id
        self.prefix = f"{JOBS_PREFIX}{job_id}/"

    def __repr__(self) -> str:
        return f"JobStore({self.objects.url!r}, {self.job_id!r})"

    # The layout. Keys are for the job layer and for tests that check the layout;
    # everyone else uses the methods below.

    @property
    def request_key(self) -> str:
        return self.prefix + "request.json"

    @property
    def manifest_key(self) -> str:
        return self.prefix + "manifest.json"

    def staged_key(self, chunks: int) -> str:
        return self.prefix + f"staged/{chunks}"

    def voice_key(self, speaker: int) -> str:
        return self.prefix + f"voices/{speaker}.wav"

    @property
    def cover_key(self) -> str:
        return self.prefix + "cover"

    @property
    def chapters_key(self) -> str:
        return self.prefix + "work/chapters.json"

    def chapter_file_key(self, number: int, fmt: str) -> str:
        return self.prefix + f"chapters/{number:03d}.{fmt}"

    def chunk_key(self, index: int) -> str:
        return self.prefix + f"chunks/{index:05d}.flac"

    @property
    def done_prefix(self) -> str:
        return self.prefix + "done/"

    def done_key(self, index: int, seconds: float, cached: bool) -> str:
        # Everything progress needs is in the key, so one LIST reads a whole job's progress.
        return self.done_prefix + f"{index:05d}-{round(seconds * 1000)}-{'c' if cached else 's'}"

    def check_key(self, index: int, attempt: int | None = None) -> str:
        """An attempt's check, or (``attempt`` None) the chunk's verdict."""
        tail = "" if attempt is None else f"-{attempt}"
        return self.prefix + f"checks/{index:05d}{tail}.json"

    def joined_key(self, fmt: str) -> str:
        return self.prefix + f"work/joined.{fmt}"

    def work_captions_key(self, ext: str) -> str:
        return self.prefix + f"work/captions.{ext}"

    @property
    def verification_key(self) -> str:
        return self.prefix + "work/verification.json"

    def output_key(self, fmt: str) -> str:
        return self.prefix + f"output.{fmt}"

    def captions_key(self, ext: str) -> str:
        """``ext``: srt, vtt (a cue per chunk), words.srt, phrases.vtt, ... (checked jobs)."""
        return self.prefix + f"output.{ext}"

    @property
    def result_key(self) -> str:
        return self.prefix + "result.json"

    @property
    def error_key(self) -> str:
        return self.prefix + "error.json"

    @property
    def cancel_key(self) -> str:
        return self.prefix + "cancelled"

    # Submitting and staging.

    def put_request(self, request: Mapping[str, Any]) -> str:
        """Keep the request in the job's folder; the reference the entry task carries instead of it."""
        self._put_json(self.request_key, request)
        return self.request_key

    def read_request(self) -> Any:
        return self._get_json(self.request_key)

    def known(self) -> bool:
        """Whether this storage holds the job: its request (a broker's producer writes it) or its manifest."""
        return self.objects.exists(self.request_key) or self.objects.exists(self.manifest_key)

    def put_voice(self, speaker: int, wav: bytes) -> str:
        key = self.voice_key(speaker)
        self.objects.put_bytes(key, wav, "audio/wav")
        return key

    def save_manifest(self, manifest: Manifest) -> None:
        """Write the manifest, then the staged marker: whoever sees the marker finds the manifest."""
        self._put_json(self.manifest_key, manifest.model_dump(mode="json"))
        self.objects.put_bytes(self.staged_key(len(manifest.chunks)), b"")

    def manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json(self.objects.get_bytes(self.manifest_key))
        except ObjectNotFound:
            raise JobNotFound(f"job {self.job_id} has no manifest (not staged yet, or unknown)") from None

    # Chunks.

    def put_chunk(self, index: int, flac: bytes, seconds: float, cached: bool) -> None:
        """Store a chunk's audio, then its done marker."""
        self.objects.put_bytes(self.chunk_key(index), flac, "audio/flac")
        self.objects.put_bytes(self.done_key(index, seconds, cached), b"")

    def get_chunk_file(self, index: int, path: Path) -> None:
        self.objects.get_file(self.chunk_key(index), path)

    def chunk_url(self, index: int, expires: int) -> str:
        return self.objects.presigned_url(self.chunk_key(index), expires)

    def done(self) -> dict[int, Done]:
        """Chunk index -> its done marker; one LIST."""
        return parse_done(self.objects.list(self.done_prefix))

    # Checks (narrator.job.verify).

    def put_json(self, key: str, value: Any) -> None:
        """A small JSON record at one of this job's keys (``check_key``, ``verification_key``)."""
        self._put_json(key, value)

    def get_json(self, key: str) -> Any:
        """A record ``put_json`` wrote; ObjectNotFound when there is none."""
        return self._get_json(key)

    def put_chunk_copy(self, index: int, source_key: str, seconds: float, cached: bool) -> None:
        """:meth:`put_chunk` from an object already stored (the attempt a check kept)."""
        self.objects.copy(source_key, self.chunk_key(index))
        self.objects.put_bytes(self.done_key(index, seconds, cached), b"")

    # Joining and publishing.

    def put_joined(self, path: Path, fmt: str, content_type: str) -> str:
        key = self.joined_key(fmt)
        self.objects.put_file(key, path, content_type)
        return key

    def put_work_captions(self, ext: str, text: str) -> None:
        self.objects.put_bytes(self.work_captions_key(ext), text.encode(), "text/plain")

    def publish_output(self, joined_key: str, fmt: str) -> tuple[str, dict[str, str]]:
        """Copy the joined audio and its captions to their final keys: (audio key, caption ext -> key).

        Captions first, audio last: whoever sees the final audio key sees a complete job.
        """
        captions = {}
        for ext in self.caption_kinds():
            captions[ext] = self.captions_key(ext)
            self.objects.copy(self.work_captions_key(ext), captions[ext])
        final = self.output_key(fmt)
        self.objects.copy(joined_key, final)
        return final, captions

    def caption_kinds(self) -> list[str]:
        """The captions joined for this job: srt and vtt, and the word and phrase ones of a checked job."""
        start = self.prefix + "work/captions."
        return sorted(key[len(start):] for key in self.objects.list(self.prefix + "work/") if key.startswith(start))

    def save_result(self, result: JobResult) -> JobResult:
        """Store the result record (never with inline audio); the record as stored."""
        record = result.model_copy(update={"audio_b64": None})
        self._put_json(self.result_key, record.to_json())
        return record

    def result(self) -> JobResult | None:
        try:
            return JobResult.model_validate_json(self.objects.get_bytes(self.result_key))
        except ObjectNotFound:
            return None

    # Failure and cancellation.

    def record_error(self, message: str, task: str = "") -> bool:
        """Record the job's failure; the first one stands (later ones are its consequences:
        the entry task re-raising, a chord's error). True if this call recorded it."""
        if self.objects.exists(self.error_key):
            return False
        self._put_json(self.error_key, ErrorRecord(error=message, task=task).model_dump(mode="json"))
        return True

    def error(self) -> ErrorRecord | None:
        try:
            return ErrorRecord.model_validate(self._get_json(self.error_key))
        except ObjectNotFound:
            return None

    def cancel(self) -> None:
        """Mark the job cancelled; its running chunks watch for this marker (narrator.job.cancel)."""
        self._put_json(self.cancel_key, {"cancelled_at": time.time()})

    def cancelled(self) -> bool:
        return self.objects.exists(self.cancel_key)

    # State.

    def markers(self) -> Markers:
        """One LIST of the job's folder."""
        return Markers.from_names(key[len(self.prefix) :] for key in self.objects.list(self.prefix))

    def state(self) -> JobState:
        return self.markers().state

    def progress(self) -> Progress:
        """One LIST, and one small GET when the job has failed, whatever the job's length."""
        markers = self.markers()
        state = markers.state
        error = None
        if markers.error and state in (JobState.FAILURE, JobState.CANCELLED):
            record = self.error()
            error = record.error if record is not None else "failed"
        return Progress(
            job_id=self.job_id,
            state=state,
            chunks_done=len(markers.done),
            chunks_total=markers.chunks_total or 0,
            audio_seconds=round(sum(d.seconds for d in markers.done.values()), 3),  # no float noise in JSON
            error=error,
            chunks_checked=markers.checked,
            chunks_retried=markers.retried,
        )

    def _put_json(self, key: str, value: Any) -> None:
        self.objects.put_bytes(key, json.dumps(value, separators=(",", ":")).encode(), "application/json")

    def _get_json(self, key: str) -> Any:
        return json.loads(self.objects.get_bytes(key))
