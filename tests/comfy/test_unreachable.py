"""No ComfyUI to reach: the client says so in plain words, and the command line ends with one line naming
NARRATOR_COMFY_URL, a non-zero exit and no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from narrator.comfy.client import ClientConfig, ComfyClient, ComfyUnreachable, Deadline
from narrator.errors import RetryableError
from narrator.settings import Settings
from tests.support.procs import ROOT, WorkerPool, free_port, settings_env

DEADLINE = 60.0


def narrator(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "narrator.cli", *args], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=DEADLINE)
    return done, time.monotonic() - started


def messages(stderr: str) -> list[str]:
    """stderr without the progress bar's lines (stderr is not a terminal here, so it prints one per change)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


def expected_line(url: str) -> re.Pattern[str]:
    return re.compile(
        r"narrator: job [0-9a-f]{32} failed: chunk 0: "
        + re.escape(f"ComfyUI at {url} is unreachable (connection refused); "
                    "start it, or set NARRATOR_COMFY_URL to a running server")
    )


def test_the_client_names_the_reason_and_the_operators_next_step() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = ComfyClient(url, ClientConfig(unreachable_hint="set X to a running server"))
    try:
        with pytest.raises(ComfyUnreachable) as refused:
            client.upload(b"RIFF", "a.wav", deadline=Deadline(5))
        assert str(refused.value) == f"ComfyUI at {url} is unreachable (connection refused); set X to a running server"
        assert isinstance(refused.value, RetryableError)  # a worker retries: ComfyUI may be restarting
        with pytest.raises(ComfyUnreachable) as waited:
            client.wait_ready(Deadline(1))
        assert str(waited.value) == (
            f"ComfyUI at {url} is unreachable (connection refused): not ready after 1 s; set X to a running server"
        )
    finally:
        client.close()
    nowhere = ComfyClient("http://no-such-host.invalid:8188", ClientConfig(connect_timeout=3))
    try:
        with pytest.raises(ComfyUnreachable, match=r"^ComfyUI at http://no-such-host.invalid:8188 is unreachable \(\w"):
            nowhere.system_stats(Deadline(5))
    finally:
        nowhere.close()


def test_speak_in_process_says_comfyui_is_unreachable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"NARRATOR_COMFY_URL": url, "NARRATOR_COMFY_TIMEOUT": "3",
           "NARRATOR_STORAGE_URL": (tmp_path / "store").as_uri()}
    done, took = narrator(env, "speak", "--model", "vibevoice-1.5b", "Hello there.", "-o", str(tmp_path / "x.wav"))
    assert done.returncode == 1
    lines = messages(done.stderr)
    assert len(lines) == 1 and expected_line(url).fullmatch(lines[0]), done.stderr
    assert "Traceback" not in done.stderr and "Retry in" not in done.stderr
    assert took < 30, f"took {took:.1f} s"
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.integration
def test_submit_wait_through_workers_says_comfyui_is_unreachable(
    broker_settings: Settings, worker_pool: WorkerPool
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    # One retry (about a second), then the chunk fails for good.
    settings = broker_settings.with_(comfy_url=url, chunk_max_retries=1)
    worker_pool.start(settings, queues="narrator.gpu", name="gpu", extra_env={"NARRATOR_COMFY_TIMEOUT": "3"})
    worker_pool.start(settings, queues="narrator.cpu", name="cpu")
    done, _ = narrator(settings_env(settings), "submit", "--wait", "--model", "vibevoice-1.5b", "Hello there.")
    assert done.returncode == 1
    lines = messages(done.stderr)
    assert len(lines) == 1 and expected_line(url).fullmatch(lines[0]), done.stderr + worker_pool.logs()
    assert "Traceback" not in done.stderr and "Retry in" not in done.stderr
    # Why the line names the chunk's own error, whoever the waiter asked first: the chunk
    # records it in storage before Celery fails the task (and the chord passes it on as
    # "Dependency ... raised ..."): the error record is older than the task's failure.
    from celery import Celery

    from narrator.job.store import JobStore
    from narrator.storage import open_store
    from narrator.tasks.pipeline import chunk_id

    found = re.search(r"job ([0-9a-f]{32}) failed", lines[0])
    assert found
    job_id = found.group(1)
    error = JobStore(open_store(settings), job_id).error()
    assert error is not None and error.error.startswith("chunk 0: ComfyUI at ")
    probe = Celery("probe", broker=settings.broker_url, backend=settings.broker_url)
    try:
        meta = probe.backend.get_task_meta(chunk_id(job_id, 0))
    finally:
        probe.close()
    assert meta["status"] == "FAILURE"
    done_at = datetime.fromisoformat(str(meta["date_done"])).replace(tzinfo=UTC).timestamp()
    assert error.at <= done_at, (error.at, meta["date_done"])
