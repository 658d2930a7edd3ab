"""The handler functions in this process, on the embedded default (no broker): output, streaming, deadlines."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf

from narrator import runpod_handler
from narrator.job.store import JobStore
from narrator.result import JobState
from narrator.settings import Settings
from narrator.storage import open_store
from tests.fakes.comfyui import FakeComfy
from tests.runpod.conftest import LONG_TEXT, voice_wav


@pytest.fixture
def settings(tmp_path: Path, small_workflows: Path) -> Settings:
    settings = Settings(storage_url=(tmp_path / "store").as_uri(), workflows_dir=small_workflows, job_timeout=120)
    runpod_handler.configure(settings, post_updates=False)
    return settings


@pytest.fixture
def held(settings: Settings, comfy_workflows: Path, fake_comfy: FakeComfy) -> Settings:
    """The handler with ``vibevoice-large`` on the fake ComfyUI, which holds every prompt until it is
    interrupted: a job there is still running whenever a test stops it, however fast the machine."""
    fake_comfy.configure(hold=True)
    held = settings.with_(workflows_dir=comfy_workflows, comfy_url=fake_comfy.url)
    runpod_handler.configure(held, post_updates=False)
    return held


def run(job_input: Any, request_id: str = "req-1") -> dict[str, Any]:
    return runpod_handler.handler({"id": request_id, "input": job_input})  # as the seed worker's tests call it


def stream(job_input: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [item async for item in runpod_handler.generator_handler({"id": "req-s", "input": job_input})]

    return asyncio.run(collect())


def test_inline_audio_is_the_stored_output(settings: Settings) -> None:
    out = run({"text": "Hello there. This is narrator."})
    assert out["success"] is True, out
    audio = base64.b64decode(out["audio_b64"])
    assert audio == open_store(settings).get_bytes(out["output_key"])
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == out["sample_rate"] == out["metrics"]["sample_rate"] == 22050
    assert abs(len(samples) / rate - out["duration_seconds"]) < 0.05
    assert out["format"] == "wav" and out["chunks"] == 1 and out["text_length"] == 30
    assert out["metrics"]["model"] == "local" and out["metrics"]["handler_time"] >= out["metrics"]["execution_time"]
    assert out["audio_url"].startswith("file://") and out["captions_url"].endswith(".vtt")


def test_audio_b64_can_be_turned_off(settings: Settings) -> None:
    out = run({"text": "Not inline, please.", "output": {"audio_b64": False}})
    assert out["success"] is True and out["audio_b64"] is None
    assert Path(out["audio_url"].removeprefix("file://")).is_file()


def test_audio_over_the_cap_goes_by_presigned_url(s3_settings: Settings, small_workflows: Path) -> None:
    settings = s3_settings.with_(workflows_dir=small_workflows, audio_b64_max_bytes=1000)
    runpod_handler.configure(settings, post_updates=False)
    out = run({"text": "This answer is too large to inline.", "output": {"format": "flac"}})
    assert out["success"] is True, out
    assert out["audio_b64"] is None
    assert out["audio_url"].startswith("http://127.0.0.1")
    fetched = httpx.get(out["audio_url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == open_store(settings).get_bytes(out["output_key"])
    assert len(fetched.content) > 1000
    assert httpx.get(out["captions_url"], timeout=10).text.startswith("WEBVTT")


def test_a_model_without_cloning_takes_a_voice_and_says_it_did_not_use_it(settings: Settings) -> None:
    out = run({"text": "Say this in my voice.", "reference_audio": base64.b64encode(voice_wav()).decode()})
    assert out["success"] is True, out
    assert out["reference_used"].startswith("Not using base64 reference (ref_b64_"), out["reference_used"]
    assert [r["used"] for r in out["references"]] == [False]


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n"}, "text"),
        ({"text": "Hi", "reference_audio": "not base64!"}, "reference_audio"),
        ({"text": "Hi", "voice_settings": {"speed": 7}}, "voice_settings.speed"),
        ({"text": "Hi", "voice_settings": {"cfg_scale": 2}}, "voice_settings.cfg_scale"),
        ({"text": "Hi", "colour": "blue"}, "colour"),
        ({"text": "Hi", "stream": "yes"}, "stream"),
        ("Hi", "input"),
    ],
)
def test_bad_input_is_an_error_naming_the_field(settings: Settings, job_input: Any, field: str) -> None:
    out = run(job_input)
    assert set(out) == {"error"}
    assert out["error"].startswith(f"{field}:"), out
    assert open_store(settings).list("jobs/") == []


def test_generator_streams_each_chunk_in_order_then_the_result(settings: Settings) -> None:
    text = LONG_TEXT[:300]
    items = stream({"text": text, "stream": True})
    *chunks, result = items
    assert result["success"] is True, result
    assert result["chunks"] >= 2 and [c["chunk"] for c in chunks] == list(range(result["chunks"]))
    store = open_store(settings)
    for c in chunks:
        assert c["job_id"] == result["job_id"] and c["chunks_total"] == result["chunks"]
        data = Path(c["audio_url"].removeprefix("file://")).read_bytes()
        assert data == store.get_bytes(JobStore(store, result["job_id"]).chunk_key(c["chunk"]))
        assert abs(sf.info(io.BytesIO(data)).duration - c["duration_seconds"]) < 0.01


def test_generator_without_stream_yields_only_the_result(settings: Settings) -> None:
    items = stream({"text": "Just the result."})
    assert len(items) == 1 and items[0]["success"] is True


@pytest.mark.parametrize(
    ("request_timeout", "endpoint_timeout"),
    [(0.5, 120.0), (100.0, 0.5)],
    ids=["the request's timeout", "the endpoint's timeout bounds the request's"],
)
def test_timeout_cancels_the_job_and_returns_an_error(
    held: Settings, request_timeout: float, endpoint_timeout: float
) -> None:
    settings = held.with_(job_timeout=endpoint_timeout)
    runpod_handler.configure(settings, post_updates=False)
    started = time.monotonic()
    out = run({"text": LONG_TEXT, "model": "vibevoice-large", "timeout": request_timeout})
    elapsed = time.monotonic() - started
    assert set(out) == {"error"} and "did not finish within 0.5 s" in out["error"], out
    # Held, the job never ends by itself: returning at all is the time-out's doing. The bound (generous
    # for a loaded machine) says it came at the time-out, not at the other one (120 s or 100 s).
    assert elapsed < 0.5 + 10
    _assert_cancelled_and_stopped(settings)


def test_stop_cancels_the_job_and_returns_an_error(held: Settings, fake_comfy: FakeComfy) -> None:
    async def stop_mid_chunk() -> dict[str, Any]:
        job = {"id": "req-stop", "input": {"text": LONG_TEXT, "model": "vibevoice-large"}}
        task = asyncio.create_task(runpod_handler.async_handler(job))
        deadline = time.monotonic() + 60
        while fake_comfy.running is None:  # held there until the stop interrupts it
            assert time.monotonic() < deadline and not task.done(), "no chunk reached ComfyUI"
            await asyncio.sleep(0.05)
        task.cancel()
        return await task

    out = asyncio.run(stop_mid_chunk())
    assert set(out) == {"error"} and "stopped by RunPod" in out["error"], out
    _assert_cancelled_and_stopped(held)


def _assert_cancelled_and_stopped(settings: Settings) -> None:
    store = open_store(settings)
    (job_prefix,) = {"/".join(k.split("/")[:2]) for k in store.list("jobs/")}
    job = JobStore(store, job_prefix.split("/")[1])
    assert job.cancelled()
    # In-process, the job runs in a thread named after it: it must end (its running chunk interrupted).
    for thread in [t for t in threading.enumerate() if t.name == f"narrator-job-{job.job_id[:8]}"]:
        thread.join(30)
        assert not thread.is_alive(), "the cancelled job kept running"
    assert job.result() is None and job.state() is JobState.CANCELLED
    assert len(job.done()) < len(job.manifest().chunks)


def test_the_handler_is_a_plain_function_even_inside_a_running_loop(settings: Settings) -> None:
    async def from_a_coroutine() -> dict[str, Any]:
        return runpod_handler.handler({"id": "req-loop", "input": {"text": "Called from async code."}})

    out = asyncio.run(from_a_coroutine())
    assert out["success"] is True and len(out["audio_b64"]) > 1000, out


def test_an_unexpected_failure_is_an_error_not_a_traceback(settings: Settings) -> None:
    out = runpod_handler.handler(["not", "a", "job"])  # type: ignore[arg-type]
    assert set(out) == {"error"} and out["error"].startswith("internal error: AttributeError"), out
    assert "Traceback" not in out["error"] and "File " not in out["error"]
