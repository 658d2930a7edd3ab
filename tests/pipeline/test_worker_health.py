"""A worker's start: warm-up in the main process (or a non-zero exit saying why), then ready, then healthy.

Real ``celery worker`` processes on the real Redis, the fake ComfyUI as its own process,
and ``narrator health`` run as a command, the way Docker's HEALTHCHECK runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from narrator import jobs
from narrator.ops import worker_state
from narrator.settings import Settings
from tests.support.comfy import FakeProcess
from tests.support.procs import ROOT, WorkerPool, free_port, settings_env, wait_until

pytestmark = pytest.mark.integration

TEXT = "The lamp in the window burned all night, and the keeper watched the dark sea until dawn came."
#: Longest a worker whose warm-up fails may take to exit (Python and Celery start-up included).
EXIT_DEADLINE = 60


def run_worker(settings: Settings, ready_file: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A GPU worker in the foreground, as start-gpu.sh runs it; it must exit by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env.update(settings_env(settings), PYTHONPATH=str(ROOT), NARRATOR_READY_FILE=str(ready_file), **extra)
    args = [sys.executable, "-m", "celery", "-A", "narrator.tasks.worker", "worker", "-Q", "narrator.gpu",
            "-c", "1", "-n", "gpu@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=EXIT_DEADLINE)


def health(ready_file: Path, *args: str, comfy_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env["NARRATOR_READY_FILE"] = str(ready_file)
    if comfy_url:
        env["NARRATOR_COMFY_URL"] = comfy_url
    return subprocess.run([sys.executable, "-m", "narrator.cli", "health", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_why(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exited non-zero before taking work, with one CRITICAL line naming the reason and no traceback."""
    assert done.returncode != 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "CRITICAL" in line]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert " ready." not in done.stderr + done.stdout, "the worker started consuming"
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_unknown_warm_up_model_exits_naming_it(broker_settings: Settings, tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    done = run_worker(broker_settings, ready_file, {"NARRATOR_WARMUP_MODELS": "local,vibevoice-huge"})
    assert_one_line_why(done, "NARRATOR_WARMUP_MODELS", "'vibevoice-huge'")
    # The reason stays for whoever waits on the worker (the RunPod handler, `narrator health`).
    state = json.loads(ready_file.read_text())
    assert state["state"] == "failed" and "vibevoice-huge" in state["error"]
    checked = health(ready_file)
    assert checked.returncode == 1 and "failed to start" in checked.stderr and "vibevoice-huge" in checked.stderr


def test_a_failing_warm_up_prompt_exits_with_the_nodes_message(
    broker_settings: Settings, fake_comfy_process: FakeProcess, tmp_path: Path
) -> None:
    message = "Model file not found: models/tts/VibeVoice/VibeVoice-Large"
    fake_comfy_process.configure(fail_node="VibeVoiceTTS", fail_message=message, fail_type="FileNotFoundError")
    settings = broker_settings.with_(comfy_url=fake_comfy_process.url, warmup_models=("vibevoice-large",))
    done = run_worker(settings, tmp_path / "ready.json", {})
    assert_one_line_why(done, "warm-up failed", "VibeVoiceTTS", message)
    assert fake_comfy_process.stats()["prompts_posted"] == 1, "only the main process's warm-up prompt ran"


def test_unreachable_comfyui_exits_naming_the_setting(broker_settings: Settings, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = broker_settings.with_(comfy_url=url, warmup_models=("vibevoice-large",))
    done = run_worker(settings, tmp_path / "ready.json", {"NARRATOR_COMFY_TIMEOUT": "2"})
    assert_one_line_why(done, f"ComfyUI at {url} is unreachable (connection refused)", "NARRATOR_COMFY_URL")


def test_health_follows_the_worker_from_warm_up_to_stop(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_process: FakeProcess, tmp_path: Path
) -> None:
    fake = fake_comfy_process
    ready_file = tmp_path / "gpu-ready.json"
    fake.configure(hang=True)  # ComfyUI not answering yet: the warm-up waits
    settings = broker_settings.with_(comfy_url=fake.url, warmup_models=("vibevoice-large",))
    gpu = worker_pool.start(settings, queues="narrator.gpu", name="gpu", wait=False,
                            extra_env={"NARRATOR_READY_FILE": str(ready_file), "NARRATOR_COMFY_TIMEOUT": "60"})
    wait_until(lambda: "warming up vibevoice-large" in gpu.logs(), 60, f"the warm-up to start:\n{gpu.logs()}", 0.1)

    before = health(ready_file, "--comfy", comfy_url=fake.url)
    assert before.returncode == 1 and "still starting" in before.stderr, before.stderr
    assert worker_state.read(ready_file).state == worker_state.STARTING

    fake.configure(hang=False)
    wait_until(lambda: worker_state.read(ready_file).ready, 60, f"the worker to be ready:\n{gpu.logs()}", 0.1)
    assert " ready." in gpu.logs()
    after = health(ready_file, "--comfy", comfy_url=fake.url)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("healthy: worker gpu@") and f"ComfyUI at {fake.url} answers" in after.stdout

    # The warmed-up worker serves the job's chunk, after the warm-up prompts.
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    result = jobs.submit({"text": TEXT, "model": "vibevoice-large"}, broker_settings).wait(timeout=120)
    assert result.chunks == 1
    texts = [_tts_text(p) for p in fake.stats()["prompts"]]
    assert len(texts) >= 2 and "lamp" in texts[-1] and not any("lamp" in t for t in texts[:-1]), texts

    # --comfy: the worker alone is not enough.
    fake.proc.terminate()
    fake.proc.wait(10)
    no_comfy = health(ready_file, "--comfy", comfy_url=fake.url)
    assert no_comfy.returncode == 1 and f"ComfyUI at {fake.url} is unreachable" in no_comfy.stderr, no_comfy.stderr
    assert health(ready_file).returncode == 0

    gpu.stop()
    assert gpu.proc.returncode == 0
    stopped = health(ready_file)
    assert stopped.returncode == 1 and "no worker state" in stopped.stderr, stopped.stderr
    assert not ready_file.exists()


def test_a_killed_worker_is_not_healthy(broker_settings: Settings, worker_pool: WorkerPool, tmp_path: Path) -> None:
    ready_file = tmp_path / "cpu-ready.json"
    cpu = worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu",
                            extra_env={"NARRATOR_READY_FILE": str(ready_file)})
    wait_until(lambda: worker_state.read(ready_file).ready, 30, "the ready file", 0.1)
    assert health(ready_file).returncode == 0
    cpu.kill()  # SIGKILL: no shutdown handler runs, the file stays
    assert json.loads(ready_file.read_text())["state"] == "ready"
    checked = health(ready_file)
    assert checked.returncode == 1 and "is no longer running" in checked.stderr, checked.stderr


def _tts_text(prompt: dict[str, Any]) -> str:
    return str(next(n for n in prompt.values() if n["class_type"] == "VibeVoiceTTS")["inputs"]["text"])


def test_narrator_worker_exits_non_zero_too(broker_settings: Settings) -> None:
    """``narrator worker`` (Celery's worker_main drops the status) ends with the same one line and status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env.update(settings_env(broker_settings), NARRATOR_WARMUP_MODELS="vibevoice-huge")
    done = subprocess.run([sys.executable, "-m", "narrator.cli", "worker", "--queues", "gpu"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=EXIT_DEADLINE)
    assert_one_line_why(done, "'vibevoice-huge'")
