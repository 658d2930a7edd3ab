"""The real RunPod worker loop (``python -m narrator.runpod_handler``) against a fake control plane.

One handler process, embedded default, no broker: it takes every job of this module
in turn. The seed worker's test inputs all go through it. Jobs that must still be running
when a test stops them (a time-out, a RunPod stop) go to ``vibevoice-large`` on a fake
ComfyUI that holds their prompts until they are interrupted.
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from narrator.job.store import JobStore
from narrator.result import JobState
from narrator.settings import Settings
from narrator.storage import ObjectStore, open_store
from tests.fakes.runpod_api import FakeRunPod
from tests.runpod.conftest import LONG_TEXT, HandlerProcess, VoiceServer, handler_env, start_handler, voice_wav
from tests.support.comfy import FakeProcess, start_fake_process, stop_fakes
from tests.support.procs import free_port, wait_until

pytestmark = pytest.mark.integration

RESULT_WAIT = 90.0


@dataclass
class Loop:
    fake: FakeRunPod
    process: HandlerProcess
    store: ObjectStore
    comfy: FakeProcess
    """Serves ``vibevoice-large``; told to ``hold``, a job there runs until it is cancelled."""

    def result(self, job_id: str, timeout: float = RESULT_WAIT) -> dict[str, Any]:
        try:
            body = self.fake.result(job_id, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- handler log ---\n{self.process.logs()[-6000:]}") from None
        assert isinstance(body, dict)
        return body


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, comfy_workflows: Path) -> Iterator[Loop]:
    folder = tmp_path_factory.mktemp("runpod-loop")
    comfy = start_fake_process(free_port(), folder / "comfyui")
    settings = Settings(
        storage_url=(folder / "store").as_uri(), workflows_dir=comfy_workflows, comfy_url=comfy.url,
        fetch_allow=("127.0.0.1",), job_timeout=120,
    )
    try:
        with FakeRunPod() as fake:
            process = start_handler(handler_env(settings, fake.env()), folder / "handler.log")
            try:
                process.wait_ready()
                yield Loop(fake, process, open_store(settings), comfy)
            finally:
                process.stop()
    finally:
        stop_fakes([comfy])


@pytest.fixture
def held(loop: Loop) -> Iterator[FakeProcess]:
    """ComfyUI holds every prompt until it is interrupted, for this test only."""
    loop.comfy.configure(hold=True)
    try:
        yield loop.comfy
    finally:
        loop.comfy.configure(hold=False)


SEED_CASES: dict[str, Any] = {
    "basic text": {"text": "Hello! This is a test of the narrator voice."},
    "base64 reference": {"text": "Cloned, if the model could.", "reference_audio": "<wav>"},
    "URL reference": {"text": "Fetched, if the model could use it.", "reference_audio_url": "<url>"},
    "voice settings": {"text": "A little faster now.", "voice_settings": {"temperature": 0.7, "speed": 1.2}},
    "long text": {"text": LONG_TEXT},
    "empty text": {"text": ""},
    "missing text": {"reference_audio_url": "<url>"},
    "bad base64": {"text": "Hello", "reference_audio": "%%% not base64 %%%"},
    "not audio": {"text": "Hello", "reference_audio": base64.b64encode(b"just some bytes, no audio").decode()},
    "private URL": {"text": "Hello", "reference_audio_url": "http://169.254.169.254/latest/meta-data"},
    "speed out of range": {"text": "Hello", "voice_settings": {"speed": 9}},
}
ERRORS = {
    "empty text": "text:",
    "missing text": "text:",
    "bad base64": "reference_audio:",
    "not audio": "reference_audio:",
    "private URL": "reference_audio_url:",
    "speed out of range": "voice_settings.speed:",
}


@pytest.fixture(scope="module")
def seed_jobs(loop: Loop, voice_server: VoiceServer) -> dict[str, str]:
    """Every seed case queued at once; the worker takes them one by one."""
    wav = base64.b64encode(voice_wav()).decode()
    ids = {}
    for name, case in SEED_CASES.items():
        job_input = {k: (wav if v == "<wav>" else voice_server.url if v == "<url>" else v) for k, v in case.items()}
        ids[name] = loop.fake.enqueue(job_input)
    return ids


@pytest.mark.parametrize("name", [n for n in SEED_CASES if n not in ERRORS])
def test_seed_inputs_succeed_with_seed_outputs(loop: Loop, seed_jobs: dict[str, str], name: str) -> None:
    body = loop.result(seed_jobs[name])
    assert "error" not in body, body
    out = body["output"]
    assert out["success"] is True
    for field in ("duration_seconds", "seed_used", "reference_used", "text_length", "metrics", "job_id",
                  "audio_url", "format", "sample_rate", "chunks", "captions_url"):
        assert field in out, field
    assert out["text_length"] == len(SEED_CASES[name]["text"])
    # The embedded model cannot clone: a given voice is named, and said to be unused.
    said = {"base64 reference": "Not using base64 reference (ref_b64_",
            "URL reference": "Not using URL reference (127.0.0.1/voice.wav): model local clones no voice"}
    assert out["reference_used"].startswith(said.get(name, "Using default voice of model local")), out["reference_used"]
    assert out["metrics"]["model"] == "local" and out["metrics"]["sample_rate"] == 22050
    samples, rate = sf.read(io.BytesIO(base64.b64decode(out["audio_b64"])))
    assert rate == 22050 and abs(len(samples) / rate - out["duration_seconds"]) < 0.05
    assert out["duration_seconds"] > 0.5


def test_a_url_reference_is_fetched_even_when_the_model_cannot_use_it(
    loop: Loop, seed_jobs: dict[str, str], voice_server: VoiceServer
) -> None:
    loop.result(seed_jobs["URL reference"])
    assert "/voice.wav" in voice_server.hits


@pytest.mark.parametrize("name", list(ERRORS))
def test_seed_bad_inputs_are_posted_as_errors(loop: Loop, seed_jobs: dict[str, str], name: str) -> None:
    body = loop.result(seed_jobs[name])
    assert set(body) == {"error"}, body
    assert body["error"].startswith(ERRORS[name]), body["error"]
    assert "Traceback" not in body["error"]
    assert loop.fake.events(seed_jobs[name], ("progress", "stream")) == []


def test_long_text_is_spoken_whole(loop: Loop, seed_jobs: dict[str, str]) -> None:
    out = loop.result(seed_jobs["long text"])["output"]
    job = JobStore(loop.store, out["job_id"])
    manifest = job.manifest()
    assert out["chunks"] == len(manifest.chunks) >= 3
    assert manifest.chunks[0].start == 0 and manifest.chunks[-1].end == len(LONG_TEXT)
    assert all(a.end <= b.start for a, b in zip(manifest.chunks, manifest.chunks[1:], strict=False))
    spoken = sum(done.seconds for done in job.done().values())
    assert out["duration_seconds"] >= 0.9 * spoken


def test_progress_is_posted_in_order_before_the_result(loop: Loop, seed_jobs: dict[str, str]) -> None:
    job_id = seed_jobs["long text"]
    out = loop.result(job_id)["output"]
    events = loop.fake.events(job_id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "take" and kinds[-1] == "done" and kinds.count("done") == 1
    progress = [e.body["output"] for e in events if e.kind == "progress"]
    done = [p["chunks_done"] for p in progress]
    assert done == sorted(done) and done[-1] == out["chunks"]
    assert len(set(done)) >= 2, done  # more than one update while the chunks were synthesized
    assert all(p["job_id"] == out["job_id"] and p["chunks_total"] in (0, out["chunks"]) for p in progress)
    seconds = [p["audio_seconds"] for p in progress]
    assert seconds == sorted(seconds)


def test_stream_posts_each_chunk_url_in_order_before_the_result(loop: Loop) -> None:
    job_id = loop.fake.enqueue({"text": LONG_TEXT[:330], "stream": True})
    out = loop.result(job_id)["output"]
    assert out["success"] is True and out["chunks"] >= 2
    events = loop.fake.events(job_id)
    streamed = [e.body["output"] for e in events if e.kind == "stream"]
    assert [s["chunk"] for s in streamed] == list(range(out["chunks"]))
    assert max(i for i, e in enumerate(events) if e.kind == "stream") < [e.kind for e in events].index("done")
    for s in streamed:
        path = Path(s["audio_url"].removeprefix("file://"))
        assert path.read_bytes() == loop.store.get_bytes(JobStore(loop.store, out["job_id"]).chunk_key(s["chunk"]))


def test_timeout_posts_an_error_and_cancels_the_job(loop: Loop, held: FakeProcess) -> None:
    # On the held ComfyUI the job cannot end within its time-out, however fast the machine.
    job_id = loop.fake.enqueue({"text": LONG_TEXT, "model": "vibevoice-large", "timeout": 1})
    body = loop.result(job_id)
    assert set(body) == {"error"} and "did not finish within 1 s" in body["error"], body
    taken = loop.fake.wait_for(job_id, "take", 1).at
    finished = loop.fake.wait_for(job_id, "done", 1).at
    assert finished - taken < 1 + 10  # at the time-out, not the job's end (generous for a loaded machine)
    job = JobStore(loop.store, body["error"].split()[1])
    assert job.cancelled() and job.result() is None and job.state() is JobState.CANCELLED


def test_runpod_stop_cancels_the_job(loop: Loop, held: FakeProcess) -> None:
    # Uncached, and held on ComfyUI: the stop lands while the job still runs.
    text = f"Stop run {uuid.uuid4().hex}. {LONG_TEXT}\n\n{LONG_TEXT}"
    job_id = loop.fake.enqueue({"text": text, "model": "vibevoice-large"})
    wait_until(lambda: running(held), RESULT_WAIT, "the job's first chunk to reach ComfyUI")
    first = loop.fake.wait_for(job_id, "progress", RESULT_WAIT).body["output"]
    loop.fake.stop(job_id)
    body = loop.result(job_id)
    assert set(body) == {"error"} and "stopped by RunPod" in body["error"], body
    job = JobStore(loop.store, first["job_id"])
    assert job.cancelled() and job.result() is None and job.state() is JobState.CANCELLED
    # The worker is free again: the next job runs to the end.
    after = loop.fake.enqueue({"text": "Still here."})
    assert loop.result(after)["output"]["success"] is True


def running(comfy: FakeProcess) -> bool:
    """A prompt is on ComfyUI and has not ended."""
    stats = comfy.stats()
    return int(stats["prompts_posted"]) > int(stats["prompts_executed"])
