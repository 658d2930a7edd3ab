"""The runpod engine's pure parts: when it looks at a chunk, and where a chunk may read and write."""

from __future__ import annotations

import pytest

from narrator.engines.runpod import POLL_CAP, POLL_MIN, poll_interval
from narrator.errors import InvalidRequest
from narrator.runpod.chunk_job import ChunkJob, output_key, voice_key

JOB = "a" * 32

POLLS = [
    # waited, running (None: queued), typical (None: none yet), expected seconds to the next look
    ("just sent, nothing known", 0.0, None, None, POLL_MIN),
    ("queued 5 s: a tenth of it", 5.0, None, None, 0.5),
    ("queued for ever: capped", 600.0, None, None, POLL_CAP),
    ("running, no typical yet: a tenth of its run", 9.0, 4.0, None, 0.4),
    ("running 0.2 s of a typical 0.5: look when it should be done", 3.0, 0.2, 0.5, 0.3),
    ("running 1 s of a typical 30: no longer than the cap", 3.0, 1.0, 30.0, POLL_CAP),
    ("past its typical time: a tenth of its run", 12.0, 6.0, 5.0, 0.6),
    ("just done when typical, at least the minimum", 3.0, 0.49, 0.5, POLL_MIN),
]


@pytest.mark.parametrize(("waited", "running", "typical", "expected"), [p[1:] for p in POLLS],
                         ids=[p[0] for p in POLLS])
def test_poll_interval(waited: float, running: float | None, typical: float | None, expected: float) -> None:
    assert poll_interval(waited, running, typical) == pytest.approx(expected)


def chunk(**changes: object) -> dict[str, object]:
    return {"model": "vibevoice-large", "text": "Speaker 1: Hello.", "output_key": output_key(JOB, 3, "abc"),
            "voices": {"1": voice_key(JOB, "f" * 64)}, **changes}


def test_a_chunk_job_round_trips() -> None:
    job = ChunkJob.parse(chunk())
    assert job.output_key == f"jobs/{JOB}/runpod/chunk-00003-abc.flac"
    assert ChunkJob.parse(job.model_dump(mode="json")) == job


@pytest.mark.parametrize(("changes", "field"), [
    ({"output_key": f"jobs/{JOB}/output.wav"}, "chunk.output_key"),
    ({"output_key": f"jobs/{JOB}/runpod/../output.wav"}, "chunk.output_key"),
    ({"output_key": "voices/alice.wav"}, "chunk.output_key"),
    ({"voices": {"1": "/etc/passwd"}}, "chunk.voices"),
    ({"text": ""}, "chunk.text"),
    ({"surprise": 1}, "chunk.surprise"),
])
def test_a_chunk_reads_and_writes_only_its_jobs_runpod_folder(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ChunkJob.parse(chunk(**changes))
    assert refused.value.field == field
