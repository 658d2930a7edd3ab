"""The real RunPod worker loop takes no job before whoever synthesizes its jobs is warm.

With a broker, as docker/start-runpod.sh runs them: a GPU worker (warming up on the fake
ComfyUI, its own process) and a CPU worker on the real Redis, and the handler told the GPU
worker's ready file. With no broker (the template's mode) the handler itself warms its
models up on ComfyUI. Until then the handler does not poll RunPod for jobs; when the
warm-up fails, the worker dies, or the wait passes NARRATOR_READY_TIMEOUT, the handler
exits 1 with the reason (RunPod replaces the worker; queued jobs wait for a healthy one).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.fakes.runpod_api import FakeRunPod
from tests.runpod.conftest import HandlerProcess, handler_env, start_handler
from tests.support.comfy import FakeProcess
from tests.support.procs import RedisServer, WorkerPool, wait_until

pytestmark = pytest.mark.integration

TEXT = "The lamp in the window burned all night, and the keeper watched the dark sea until dawn came."
EXIT_DEADLINE = 30.0


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    redis_server.flush()
    return Settings(broker_url=redis_server.url, storage_url=(tmp_path / "store").as_uri(),
                    workflows_dir=PROJECT_WORKFLOWS, job_timeout=120)


@pytest.fixture
def control_plane() -> Iterator[FakeRunPod]:
    """A fake RunPod of this test's own: a job left queued must not reach another test's handler."""
    with FakeRunPod() as fake:
        yield fake


def handler(settings: Settings, fake: FakeRunPod, ready_file: Path, log: Path, timeout: float = 120) -> HandlerProcess:
    extra = {**fake.env(), "NARRATOR_READY_FILE": str(ready_file), "NARRATOR_READY_TIMEOUT": str(timeout)}
    process = start_handler(handler_env(settings, extra), log)
    wait_until(lambda: "waiting for the GPU worker" in process.logs() or process.proc.poll() is not None, 60,
               f"the handler to wait for the GPU worker:\n{process.logs()}", 0.1)
    return process


def gpu_worker(pool: WorkerPool, settings: Settings, comfy: FakeProcess, ready_file: Path, models: str) -> None:
    pool.start(settings.with_(comfy_url=comfy.url), queues="narrator.gpu", name="gpu", wait=False,
               extra_env={"NARRATOR_READY_FILE": str(ready_file), "NARRATOR_WARMUP_MODELS": models,
                          "NARRATOR_COMFY_TIMEOUT": "60"})


def takes_the_job_once_released(
    comfy: FakeProcess, control_plane: FakeRunPod, job_id: str, process: HandlerProcess, ready_line: str
) -> None:
    """ComfyUI answers again: the warm-up ends, and only then is the waiting job taken and done."""
    unhung = time.monotonic()
    comfy.configure(hang=False)
    body = control_plane.result(job_id, 120)
    assert body["output"]["success"] is True and body["output"]["chunks"] == 1, body
    assert control_plane.events(job_id, ("take",))[0].at > unhung
    logs = process.logs()
    assert logs.index(ready_line) < logs.index("Starting Serverless Worker")


def exited(process: HandlerProcess) -> int:
    try:
        return process.proc.wait(EXIT_DEADLINE)
    finally:
        process.stop()


def test_no_job_is_taken_until_the_gpu_worker_is_ready(
    settings: Settings, worker_pool: WorkerPool, fake_comfy_process: FakeProcess, control_plane: FakeRunPod,
    tmp_path: Path,
) -> None:
    ready_file = tmp_path / "gpu-ready.json"
    fake_comfy_process.configure(hang=True)  # the GPU worker's warm-up waits for ComfyUI
    gpu_worker(worker_pool, settings, fake_comfy_process, ready_file, "vibevoice-large")
    worker_pool.start(settings, queues="narrator.cpu", name="cpu")
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    process = handler(settings, control_plane, ready_file, tmp_path / "handler.log")
    try:
        gpu = worker_pool.workers[0]
        wait_until(lambda: "warming up vibevoice-large" in gpu.logs(), 60, "the GPU worker's warm-up", 0.1)
        assert control_plane.events(job_id) == [], "a job was taken before the GPU worker was ready"
        assert "Starting Serverless Worker" not in process.logs()

        takes_the_job_once_released(fake_comfy_process, control_plane, job_id, process, "GPU worker ready, taking jobs")
    finally:
        process.stop()


def test_a_failed_warm_up_ends_the_handler_with_the_reason(
    settings: Settings, worker_pool: WorkerPool, fake_comfy_process: FakeProcess, control_plane: FakeRunPod,
    tmp_path: Path,
) -> None:
    ready_file = tmp_path / "gpu-ready.json"
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    process = handler(settings, control_plane, ready_file, tmp_path / "handler.log")
    gpu_worker(worker_pool, settings, fake_comfy_process, ready_file, "vibevoice-huge")
    assert exited(process) == 1, process.logs()
    logs = process.logs()
    assert "warm-up failed, taking no jobs" in logs and "failed to start" in logs and "'vibevoice-huge'" in logs, logs
    assert "Starting Serverless Worker" not in logs and "Traceback" not in logs
    assert control_plane.events(job_id) == [], "the job stays queued at RunPod for a healthy worker"


def test_a_gpu_worker_that_dies_while_warming_up_ends_the_handler(
    settings: Settings, worker_pool: WorkerPool, fake_comfy_process: FakeProcess, control_plane: FakeRunPod,
    tmp_path: Path,
) -> None:
    ready_file = tmp_path / "gpu-ready.json"
    fake_comfy_process.configure(hang=True)
    gpu_worker(worker_pool, settings, fake_comfy_process, ready_file, "vibevoice-large")
    gpu = worker_pool.workers[0]
    wait_until(lambda: "warming up vibevoice-large" in gpu.logs(), 60, "the GPU worker's warm-up", 0.1)
    process = handler(settings, control_plane, ready_file, tmp_path / "handler.log")
    gpu.kill()
    assert exited(process) == 1, process.logs()
    assert "is no longer running (it was starting)" in process.logs(), process.logs()


def test_the_wait_has_a_deadline(settings: Settings, control_plane: FakeRunPod, tmp_path: Path) -> None:
    process = handler(settings, control_plane, tmp_path / "never.json", tmp_path / "handler.log", timeout=1)
    assert exited(process) == 1, process.logs()
    logs = process.logs()
    assert "not ready within 1 s" in logs and "has not started yet" in logs, logs


# --- no broker (the template's mode): the handler synthesizes, so it warms up itself -------------------
@pytest.fixture
def in_process(tmp_path: Path, fake_comfy_process: FakeProcess) -> Settings:
    """As docker/start-runpod.sh runs it with no NARRATOR_BROKER_URL: the handler and ComfyUI, nothing else."""
    return Settings(storage_url=(tmp_path / "store").as_uri(), workflows_dir=PROJECT_WORKFLOWS,
                    comfy_url=fake_comfy_process.url, warmup_models=("vibevoice-large",), job_timeout=120)


def in_process_handler(settings: Settings, fake: FakeRunPod, log: Path) -> HandlerProcess:
    return start_handler(handler_env(settings, {**fake.env(), "NARRATOR_COMFY_TIMEOUT": "60"}), log)


def test_in_process_no_job_is_taken_until_the_handler_has_warmed_up(
    in_process: Settings, fake_comfy_process: FakeProcess, control_plane: FakeRunPod, tmp_path: Path
) -> None:
    fake_comfy_process.configure(hang=True)  # the warm-up waits for ComfyUI
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    process = in_process_handler(in_process, control_plane, tmp_path / "handler.log")
    try:
        wait_until(lambda: "warming up vibevoice-large" in process.logs() or process.proc.poll() is not None, 60,
                   "the handler's warm-up", 0.1)
        assert control_plane.events(job_id) == [], "a job was taken before the models were warm"
        logs = process.logs()
        assert "warmed up vibevoice-large" not in logs and "Starting Serverless Worker" not in logs, logs

        takes_the_job_once_released(fake_comfy_process, control_plane, job_id, process, "warmed up vibevoice-large")
    finally:
        process.stop()


def test_in_process_a_failed_warm_up_ends_the_handler_with_the_reason(
    in_process: Settings, fake_comfy_process: FakeProcess, control_plane: FakeRunPod, tmp_path: Path
) -> None:
    """ComfyUI without the model's tokenizer (weights not fetched): the handler exits 1 and takes no job."""
    fake_comfy_process.configure(drop_files=["VibeVoice/VibeVoice-Large/tokenizer.json"])
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    process = in_process_handler(in_process, control_plane, tmp_path / "handler.log")
    assert exited(process) == 1, process.logs()
    logs = process.logs()
    assert "warm-up failed, taking no jobs" in logs and "(VibeVoiceTTS) failed" in logs, logs
    assert "LocalEntryNotFoundError" in logs, logs  # what the pinned pack raises for a missing tokenizer.json
    assert "Starting Serverless Worker" not in logs and "Traceback" not in logs
    assert control_plane.events(job_id) == [], "the job stays queued at RunPod for a healthy worker"
