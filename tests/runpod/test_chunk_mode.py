"""The handler's chunk mode (the endpoint side of the runpod engine), on the embedded voice."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from narrator import runpod_handler
from narrator.job.store import JobStore
from narrator.runpod.chunk_job import output_key, voice_key
from narrator.settings import Settings
from narrator.storage import open_store
from tests.runpod.conftest import voice_wav


@pytest.fixture
def settings(tmp_path: Path, small_workflows: Path) -> Settings:
    settings = Settings(storage_url=(tmp_path / "bucket").as_uri(), workflows_dir=small_workflows, verify="off")
    runpod_handler.configure(settings, post_updates=False)
    return settings


def chunk_input(job_id: str, **changes: Any) -> dict[str, Any]:
    chunk = {"model": "local", "text": "The lamp flickered once.", "output_key": output_key(job_id, 0, "t1"),
             "job_id": job_id, "index": 0, "params": {"speed": 1.0}}
    return {"id": "rp-1", "input": {"chunk": {**chunk, **changes}}}


def test_a_chunk_is_spoken_into_the_key_it_names(settings: Settings) -> None:
    job_id = uuid.uuid4().hex
    out = runpod_handler.handler(chunk_input(job_id))
    done = out["chunk"]
    assert (done["output_key"], done["model"], done["sample_rate"]) == (output_key(job_id, 0, "t1"), "local", 22050)
    samples, rate = sf.read(io.BytesIO(open_store(settings).get_bytes(done["output_key"])))
    assert rate == 22050 and abs(len(samples) / rate - done["seconds"]) < 0.01 and done["seconds"] > 0.5


def test_a_chunk_of_a_cancelled_job_never_starts(settings: Settings) -> None:
    job_id = uuid.uuid4().hex
    JobStore(open_store(settings), job_id).cancel()
    out = runpod_handler.handler(chunk_input(job_id))
    assert out["chunk_error"]["cancelled"] is True and out["chunk_error"]["retryable"] is False
    assert not open_store(settings).exists(output_key(job_id, 0, "t1"))


@pytest.mark.parametrize(("changes", "said", "retryable"), [
    ({"model": "vibevoice-9b"}, "this endpoint does not run model 'vibevoice-9b' (it runs: local)", False),
    ({"params": {"cfg_scale": 1.5}}, "model 'local' does not support cfg_scale", False),
    ({"voices": {"1": "<voice>"}}, "NARRATOR_STORAGE_URL: ", False),
    ({"output_key": "jobs/elsewhere.wav"}, "chunk.output_key", False),
])
def test_what_the_endpoint_cannot_do_is_said(settings: Settings, changes: dict[str, Any], said: str,
                                            retryable: bool) -> None:
    job_id = uuid.uuid4().hex
    if "voices" in changes:
        changes = {"voices": {"1": voice_key(job_id, "0" * 64)}}  # in no bucket this endpoint sees
    out = runpod_handler.handler(chunk_input(job_id, **changes))
    assert said in out["chunk_error"]["message"], out
    assert out["chunk_error"]["retryable"] is retryable


def test_a_voice_in_the_shared_bucket_is_read(settings: Settings) -> None:
    job_id = uuid.uuid4().hex
    key = voice_key(job_id, "1" * 64)
    open_store(settings).put_bytes(key, voice_wav())
    # The embedded model clones no voice, but it reads it (and refuses nothing): the key is honoured.
    assert "chunk" in runpod_handler.handler(chunk_input(job_id, voices={"1": key}))
