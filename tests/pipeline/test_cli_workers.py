"""The ``narrator`` command against real workers: submit --wait, status, result, cancel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from narrator import jobs
from narrator.errors import JobCancelled
from narrator.settings import Settings
from tests.support.procs import ROOT, WorkerPool, settings_env, wait_until

pytestmark = pytest.mark.integration


def narrator(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env.update(settings_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "narrator.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=timeout,
    )


def test_submit_wait_status_result(broker_settings: Settings, worker_pool: WorkerPool, tmp_path: Path) -> None:
    worker_pool.start(broker_settings, concurrency=2)
    text = "The command line talks to the same workers.\n\nIt shows progress while it waits."
    out = narrator(broker_settings, "submit", text, "--wait", "--format", "flac", "-o", str(tmp_path / "a.flac"))
    assert out.returncode == 0, out.stderr + worker_pool.logs()
    result = json.loads(out.stdout)
    assert result["success"] and result["format"] == "flac"
    n = result["chunks"]
    # A progress line per change, ending complete (stderr is not a terminal here).
    bars = [line for line in out.stderr.splitlines() if line.startswith("[")]
    assert bars and bars[-1].startswith("[" + "#" * 30 + f"] {n}/{n} chunks")
    assert abs(sf.info(str(tmp_path / "a.flac")).duration - result["duration_seconds"]) < 0.05

    status = narrator(broker_settings, "status", result["job_id"])
    assert status.returncode == 0
    assert json.loads(status.stdout)["state"] == "SUCCESS"
    fetched = narrator(broker_settings, "result", result["job_id"], "-o", str(tmp_path / "b.flac"))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "b.flac").read_bytes() == (tmp_path / "a.flac").read_bytes()

    submitted = narrator(broker_settings, "submit", "Queued, not awaited.")
    job_id = submitted.stdout.strip()
    assert submitted.returncode == 0 and len(job_id) == 32
    assert jobs.get(job_id, broker_settings).wait(timeout=60).success


def test_bad_input_exits_2_naming_the_field(broker_settings: Settings) -> None:
    out = narrator(broker_settings, "submit", "Hello.", "--speed", "9")
    assert out.returncode == 2
    assert "voice_settings.speed" in out.stderr


def test_cancel_revokes_and_interrupts_comfyui(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    (fake,) = fake_comfy_processes(1)
    fake.configure(hold=True)  # every prompt runs until interrupted: the cancel certainly finds one running
    worker_pool.start(broker_settings.with_(comfy_url=fake.url), queues="narrator.gpu", name="gpu")
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    text = "\n\n".join(f"Paragraph {i} of a job that will be cancelled before it is done." for i in range(6))
    handle = jobs.submit({"text": text, "model": "vibevoice-large"}, broker_settings)
    # Cancel while a chunk is running on ComfyUI.
    wait_until(lambda: fake.stats()["prompts_posted"] >= 1, 60, "the first prompt to reach ComfyUI")
    out = narrator(broker_settings, "cancel", handle.id)
    assert out.returncode == 0, out.stderr
    wait_until(lambda: fake.stats()["interrupts"], 30, "ComfyUI to see /interrupt")
    with pytest.raises(JobCancelled):
        handle.wait(timeout=60)
    assert json.loads(narrator(broker_settings, "status", handle.id).stdout)["state"] == "CANCELLED"
    assert fake.stats()["prompts_posted"] == 1, "a chunk after the cancelled one reached ComfyUI"
    assert handle.result() is None
