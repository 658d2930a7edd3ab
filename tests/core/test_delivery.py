"""One decision for inline audio and URL lifetimes, whoever delivers the job."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from narrator.job.delivery import Delivery, delivery, inline_audio, with_inline_audio
from narrator.job.store import ChunkEntry, JobStore, Manifest
from narrator.request import JobRequest, OutputSpec
from narrator.result import JobResult, Metrics
from narrator.settings import Settings
from narrator.storage import FileStore

DAY, WEEK = 24 * 3600, 7 * 24 * 3600
SETTINGS = Settings(audio_b64_max_bytes=10, presign_default_seconds=DAY, presign_max_seconds=WEEK)


@pytest.mark.parametrize(
    ("output", "inline", "expires"),
    [
        ({}, True, DAY),  # unset: inline while it fits (the seed worker's answer)
        ({"audio_b64": True}, True, DAY),
        ({"audio_b64": False}, False, DAY),  # never: audio_url only
        ({"url_expires": 60}, True, 60),
        ({"url_expires": WEEK}, True, WEEK),
        ({"url_expires": WEEK + 1}, True, WEEK),  # capped
        ({"audio_b64": False, "url_expires": 10 * WEEK}, False, WEEK),
    ],
)
def test_delivery_from_the_request_and_settings(output: dict[str, Any], inline: bool, expires: int) -> None:
    assert delivery(OutputSpec(**output), SETTINGS) == Delivery(inline=inline, inline_max_bytes=10, url_expires=expires)


def test_a_default_above_the_maximum_is_capped() -> None:
    settings = Settings(presign_default_seconds=2 * WEEK, presign_max_seconds=WEEK)
    assert delivery(OutputSpec(), settings).url_expires == WEEK


@pytest.mark.parametrize(
    ("audio_b64", "size", "inlined"),
    [
        (None, 0, True),
        (None, 10, True),
        (None, 11, False),  # over the cap: audio_url carries it
        (True, 10, True),
        (True, 11, False),
        (False, 1, False),
    ],
)
def test_inline_audio_as_asked_under_the_cap(tmp_path: Path, audio_b64: bool | None, size: int, inlined: bool) -> None:
    job = JobStore(FileStore(tmp_path), "b" * 32)
    data = bytes(range(size))
    job.objects.put_bytes(job.output_key("wav"), data)
    encoded = inline_audio(job, job.output_key("wav"), delivery(OutputSpec(audio_b64=audio_b64), SETTINGS))
    assert encoded == (base64.b64encode(data).decode() if inlined else None)


def test_with_inline_audio_reads_the_request_from_the_manifest(tmp_path: Path) -> None:
    job = JobStore(FileStore(tmp_path), "c" * 32)
    job.objects.put_bytes(job.output_key("wav"), b"RIFF")
    entry = ChunkEntry(index=0, text="Hi.", start=0, end=3, boundary="end", digest="d" * 64)
    result = JobResult(
        duration_seconds=1.0, text_length=3, metrics=Metrics(), job_id=job.job_id,
        output_key=job.output_key("wav"), format="wav", sample_rate=22050, chunks=1,
    )
    for asked, expected in ((None, "UklGRg=="), (False, None)):
        request = JobRequest.parse({"text": "Hi.", "output": {"audio_b64": asked}})
        job.save_manifest(Manifest(
            job_id=job.job_id, request=request, model="local", params={}, text_length=3, format="wav",
            sample_rate=22050, chunks=[entry],
        ))
        assert with_inline_audio(result, job, SETTINGS).audio_b64 == expected
