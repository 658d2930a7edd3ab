"""docker/start-runpod.sh as the RunPod image runs it, with no broker (the template's mode).

The script runs for real: the weights step on a "network volume" (a folder) against a fake
Hugging Face Hub, ComfyUI through the GPU image's entry point (a stub that starts the fake
ComfyUI, the one stand-in), and the real handler against a fake RunPod control plane. What
docs/runpod.md says must hold: the weights are on the volume before ComfyUI starts, only ComfyUI
and the handler run (no Redis, no Celery worker), the handler takes its first job after its
models are warm, and a boot whose weights cannot be made ready takes no job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.deploy.test_fetch_weights import OFFICIAL, SCRIPT, hub_env, qwen_repo, weights_repo
from tests.fakes.hf_hub import FakeHub
from tests.fakes.runpod_api import FakeRunPod
from tests.runpod.conftest import handler_env
from tests.support.procs import ROOT, free_port, stop_group

pytestmark = pytest.mark.integration

START = ROOT / "docker" / "start-runpod.sh"
TEXT = "The lamp in the window burned all night, and the keeper watched the dark sea until dawn came."
STUB = """#!/usr/bin/env bash
# The GPU image's entry point, for the test: its ComfyUI is the fake.
echo "$*" >> "${STUB_LOG}"
case "$1" in
  comfyui) exec "${FAKE_PYTHON}" -m tests.fakes.comfyui --port "${COMFY_PORT}" --root "${FAKE_ROOT}" ;;
  *) echo "the test's narrator-start-gpu does not run $*" >&2; exit 64 ;;
esac
"""


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    repo, tokenizer = OFFICIAL["VibeVoice-Large"]
    with FakeHub([weights_repo(repo), qwen_repo(tokenizer)]) as fake:
        yield fake


@pytest.fixture
def control_plane() -> Iterator[FakeRunPod]:
    with FakeRunPod() as fake:
        yield fake


class Container:
    def __init__(self, tmp_path: Path, hub: FakeHub, control_plane: FakeRunPod, extra: dict[str, str]) -> None:
        self.tmp = tmp_path
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "narrator-start-gpu").write_text(STUB)
        (bin_dir / "narrator-start-gpu").chmod(0o755)
        port = free_port()
        settings = Settings(storage_url=(tmp_path / "store").as_uri(), workflows_dir=PROJECT_WORKFLOWS,
                            comfy_url=f"http://127.0.0.1:{port}", warmup_models=("vibevoice-large",),
                            job_timeout=120)
        (tmp_path / "runpod-volume").mkdir()
        (tmp_path / "tmp").mkdir()
        self.env = {
            **handler_env(settings, control_plane.env()), **hub_env(hub, tmp_path / "hf-home"),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "VENV_BIN": str(Path(sys.executable).parent),
            "STUB_LOG": str(tmp_path / "started.log"), "FAKE_PYTHON": sys.executable,
            "FAKE_ROOT": str(tmp_path / "comfy-root"), "COMFY_PORT": str(port), "NARRATOR_COMFY_TIMEOUT": "60",
            "RUNPOD_VOLUME": str(tmp_path / "runpod-volume"), "COMFY_PYTHON": sys.executable,
            "FETCH_WEIGHTS": str(SCRIPT), "COMFY_MAIN": str(tmp_path / "comfyui" / "main.py"),
            "VIBEVOICE_MODELS": "VibeVoice-Large", "TMPDIR": str(tmp_path / "tmp"), "HF_HUB_OFFLINE": "1",
            **extra,
        }
        self.log = tmp_path / "container.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["bash", str(START)], env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def started(self) -> list[str]:
        path = self.tmp / "started.log"
        return path.read_text().split("\n")[:-1] if path.exists() else []

    def commands(self) -> list[str]:
        """The command lines of every process of the container (its session)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getsid(int(entry.name)) != self.proc.pid:
                    continue
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except (OSError, ProcessLookupError):
                continue
        return found

    def exit_code(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        stop_group(self.proc)


def test_without_a_broker_the_container_is_comfyui_and_a_handler_that_warms_up_first(
    tmp_path: Path, hub: FakeHub, control_plane: FakeRunPod
) -> None:
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    container = Container(tmp_path, hub, control_plane, {})
    try:
        body = control_plane.result(job_id, 180)
        assert body["output"]["success"] is True and body["output"]["chunks"] == 1, (body, container.logs())
        logs = container.logs()
        order = ["VibeVoice-Large: complete", "warming up vibevoice-large", "warmed up vibevoice-large",
                 "ready, taking jobs", "Starting Serverless Worker"]
        assert [logs.index(line) for line in order] == sorted(logs.index(line) for line in order), logs
        assert container.started() == ["comfyui"], "only ComfyUI comes from the GPU image's entry point"
        running = container.commands()
        assert any("narrator.runpod_handler" in cmd for cmd in running), running
        assert not [cmd for cmd in running if "celery" in cmd or "redis-server" in cmd], running
        link = tmp_path / "comfyui" / "models" / "tts" / "VibeVoice" / "VibeVoice-Large"
        assert link.resolve() == (tmp_path / "runpod-volume" / "narrator" / "models" / "tts" / "VibeVoice"
                                  / "VibeVoice-Large").resolve()
    finally:
        container.stop()
    assert container.proc.returncode is not None


def test_weights_that_cannot_be_made_ready_end_the_container_before_comfyui_starts(
    tmp_path: Path, hub: FakeHub, control_plane: FakeRunPod
) -> None:
    hub.add(weights_repo("aoi-ot/VibeVoice-Large", drop="model-00002-of-00002.safetensors"))
    job_id = control_plane.enqueue({"text": TEXT, "model": "vibevoice-large"})
    container = Container(tmp_path, hub, control_plane, {})
    assert container.exit_code(120) == 1, container.logs()
    logs = container.logs()
    errors = [line for line in logs.splitlines() if line.startswith("fetch_weights:")]
    assert len(errors) == 1 and "lacks model-00002-of-00002.safetensors" in errors[0], logs
    assert "taking no jobs" in logs
    assert container.started() == [] and "Starting Serverless Worker" not in logs
    assert control_plane.events(job_id) == []


def test_runpod_workers_without_a_broker_is_refused_before_anything_starts(
    tmp_path: Path, hub: FakeHub, control_plane: FakeRunPod
) -> None:
    container = Container(tmp_path, hub, control_plane, {"RUNPOD_WORKERS": "gpu"})
    assert container.exit_code() == 2, container.logs()
    assert "RUNPOD_WORKERS=gpu needs NARRATOR_BROKER_URL" in container.logs()
    assert container.started() == [] and hub.requests == []


def test_an_unknown_runpod_workers_value_is_named(tmp_path: Path, hub: FakeHub, control_plane: FakeRunPod) -> None:
    extra = {"RUNPOD_WORKERS": "gpu,flower", "NARRATOR_BROKER_URL": "redis://127.0.0.1:1/0"}
    container = Container(tmp_path, hub, control_plane, extra)
    assert container.exit_code() == 2, container.logs()
    assert "RUNPOD_WORKERS=gpu,flower: write cpu, gpu, cpu,gpu or none" in container.logs()
    assert container.started() == [] and hub.requests == []
