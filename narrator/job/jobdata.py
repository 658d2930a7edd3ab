"""A job's state in object storage: the layout, the manifest, progress markers.

Storage is the source of truth for a job, so any process that can see the store
(the CLI, the RunPod handler, another backend) can follow a job, whatever the
broker. Only keys and small JSON go through the broker.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import JobNotFound, ObjectNotFound
from ..result import JobResult, Progress
from ..storage import ObjectStore

JOB_ID = re.compile(r"^[a-f0-9]{32}$")


def normalise_job_id(task_id: str) -> str:
    """A job id is its entry task's id; other producers may send it with dashes."""
    job_id = task_id.replace("-", "").lower()
    if not JOB_ID.match(job_id):
        raise JobNotFound(f"not a job id: {task_id!r}")
    return job_id


def job_prefix(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise JobNotFound(f"not a job id: {job_id!r}")
    return f"jobs/{job_id}/"


def manifest_key(job_id: str) -> str:
    return job_prefix(job_id) + "manifest.json"


def request_key(job_id: str) -> str:
    return job_prefix(job_id) + "request.json"


def staged_prefix(job_id: str) -> str:
    return job_prefix(job_id) + "staged/"


def staged_key(job_id: str, chunks: int) -> str:
    # The chunk count in the key: progress needs no GET of a (possibly large) manifest.
    return staged_prefix(job_id) + str(chunks)


def voice_key(job_id: str, speaker: int) -> str:
    return job_prefix(job_id) + f"voices/{speaker}.wav"


def chunk_key(job_id: str, index: int) -> str:
    return job_prefix(job_id) + f"chunks/{index:05d}.flac"


def done_prefix(job_id: str) -> str:
    return job_prefix(job_id) + "done/"


def done_key(job_id: str, index: int, seconds: float, cached: bool) -> str:
    # Everything progress needs is in the key, so one LIST reads a whole job's progress.
    return done_prefix(job_id) + f"{index:05d}-{round(seconds * 1000)}-{'c' if cached else 's'}"


def joined_key(job_id: str, fmt: str) -> str:
    return job_prefix(job_id) + f"work/joined.{fmt}"


def output_key(job_id: str, fmt: str) -> str:
    return job_prefix(job_id) + f"output.{fmt}"


def captions_key(job_id: str, ext: str) -> str:
    return job_prefix(job_id) + f"output.{ext}"


def work_captions_key(job_id: str, ext: str) -> str:
    return job_prefix(job_id) + f"work/captions.{ext}"


def result_key(job_id: str) -> str:
    return job_prefix(job_id) + "result.json"


def error_key(job_id: str) -> str:
    return job_prefix(job_id) + "error.json"


def cancel_key(job_id: str) -> str:
    return job_prefix(job_id) + "cancelled"


def cache_key(digest: str) -> str:
    return f"cache/{digest[:2]}/{digest}.flac"


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


class Manifest(BaseModel):
    job_id: str
    request: dict[str, Any]
    """The request as admitted, with inline voice data removed."""
    model: str
    params: dict[str, Any]
    voices: dict[int, str] = Field(default_factory=dict)
    """Speaker -> storage key of its normalised voice."""
    reference_used: bool = False
    seed_used: int | None = None
    text_length: int
    format: str
    sample_rate: int
    chunks: list[ChunkEntry]
    created_at: float = Field(default_factory=time.time)


def put_json(store: ObjectStore, key: str, value: Any) -> None:
    store.put_bytes(key, json.dumps(value, separators=(",", ":")).encode(), "application/json")


def get_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.get_bytes(key))


def read_manifest(store: ObjectStore, job_id: str) -> Manifest:
    try:
        return Manifest.model_validate_json(store.get_bytes(manifest_key(job_id)))
    except ObjectNotFound:
        raise JobNotFound(f"job {job_id} has no manifest (not staged yet, or unknown)") from None


def read_result(store: ObjectStore, job_id: str) -> JobResult | None:
    try:
        return JobResult.model_validate_json(store.get_bytes(result_key(job_id)))
    except ObjectNotFound:
        return None


class Done(BaseModel):
    model_config = ConfigDict(frozen=True)

    seconds: float
    cached: bool


def parse_done(keys: list[str]) -> dict[int, Done]:
    """Chunk index -> its done marker, from marker keys (``done/{index:05d}-{millis}-{c|s}``)."""
    done: dict[int, Done] = {}
    for key in keys:
        parts = key.rsplit("/", 1)[-1].split("-")
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        # A redelivered chunk may mark itself twice; the first marker stands.
        done.setdefault(int(parts[0]), Done(seconds=int(parts[1]) / 1000, cached=parts[2] == "c"))
    return done


def read_done(store: ObjectStore, job_id: str) -> dict[int, Done]:
    return parse_done(store.list(done_prefix(job_id)))


def read_progress(store: ObjectStore, job_id: str) -> Progress:
    """One LIST and at most three small GETs, whatever the job's length."""
    keys = store.list(job_prefix(job_id))
    prefix = job_prefix(job_id)
    names = {k[len(prefix) :] for k in keys}
    progress = Progress(job_id=job_id)
    staged = [n for n in names if n.startswith("staged/")]
    if staged:
        progress.state = "SYNTHESIZING"
        progress.chunks_total = int(staged[0].removeprefix("staged/"))
    done = parse_done([n for n in names if n.startswith("done/")])
    progress.chunks_done = len(done)
    progress.audio_seconds = sum(d.seconds for d in done.values())
    if any(n.startswith("work/joined.") for n in names):
        progress.state = "UPLOADING"
    if "result.json" in names:
        progress.state = "SUCCESS"
    if "error.json" in names and progress.state != "SUCCESS":
        progress.state = "FAILURE"
        progress.error = str(get_json(store, error_key(job_id)).get("error", "failed"))
    if "cancelled" in names and progress.state != "SUCCESS":
        # Cancelling makes the running tasks fail; the job was cancelled, not broken.
        progress.state = "CANCELLED"
    return progress
