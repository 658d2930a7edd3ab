"""Fixtures for the RunPod handler: the fake control plane, handler processes, voices to clone.

The embedded model is used with small chunks (a copy of ``local.toml`` with
``max_chunk_chars = 160``), so "long text" means several chunks in a few seconds.
"""

from __future__ import annotations

import http.server
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.fakes.runpod_api import FakeRunPod
from tests.support.procs import ROOT, settings_env, stop_group, wait_until

SMALL_CHUNKS = 160

LONG_TEXT = (
    "The old lighthouse stood at the end of the point, and its keeper climbed the stairs every evening. "
    "One night the lamp would not light. He tried the wick, the oil and the glass, and still it stayed dark. "
    "Far out at sea, a ship was turning toward the rocks, its crew unaware of the danger ahead. "
    "He ran down to the boat house, lit a lantern, and rowed out into the wind and the rain. "
    "By morning the ship was safe in the harbour, and the keeper slept until noon. The end."
)


def voice_wav(seconds: float = 1.5, rate: int = 22050) -> bytes:
    """A real WAV file: a voiced, vowel-like tone with vibrato and a syllable rhythm."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 8 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    samples = (0.3 * tone * envelope / np.max(np.abs(tone))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="session")
def small_workflows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("workflows")
    text = (PROJECT_WORKFLOWS / "local.toml").read_text()
    small = f"max_chunk_chars = {SMALL_CHUNKS}"
    lines = [small if ln.startswith("max_chunk_chars") else ln for ln in text.splitlines()]
    (folder / "local.toml").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def comfy_workflows(tmp_path_factory: pytest.TempPathFactory, small_workflows: Path) -> Path:
    """The shipped models with the small-chunk ``local``: jobs on ``vibevoice-large`` go to ComfyUI.

    A test that needs a job to be still running at some moment (a time-out, a stop) sends it to
    ``vibevoice-large`` on a fake ComfyUI told to ``hold`` its prompts: no clock decides when it ends.
    """
    folder = tmp_path_factory.mktemp("comfy-workflows") / "workflows"
    shutil.copytree(PROJECT_WORKFLOWS, folder)
    shutil.copy(small_workflows / "local.toml", folder / "local.toml")
    return folder


@pytest.fixture(scope="session")
def fake_runpod() -> Iterator[FakeRunPod]:
    with FakeRunPod() as fake:
        yield fake


@dataclass
class VoiceServer:
    url: str
    data: bytes
    hits: list[str]


@pytest.fixture(scope="session")
def voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """Serves ``/voice.wav`` on loopback (allowed to the handler by NARRATOR_FETCH_ALLOW=127.0.0.1)."""
    folder = tmp_path_factory.mktemp("voice-origin")
    data = voice_wav()
    (folder / "voice.wav").write_bytes(data)
    hits: list[str] = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield VoiceServer(f"http://127.0.0.1:{server.server_address[1]}/voice.wav", data, hits)
    finally:
        server.shutdown()
        server.server_close()


def handler_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing NARRATOR_*, RUNPOD_* or AWS_* leaks in from the developer's shell."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATOR_", "RUNPOD_", "AWS_"))}
    env = {**keep, **settings_env(settings), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env["RUNPOD_LOG_LEVEL"] = "INFO"
    env["NARRATOR_JOB_TIMEOUT"] = str(settings.job_timeout)
    env["NARRATOR_AUDIO_B64_MAX_BYTES"] = str(settings.audio_b64_max_bytes)
    if settings.warmup_models:
        env["NARRATOR_WARMUP_MODELS"] = ",".join(settings.warmup_models)
    return {**env, **(extra or {})}


@dataclass
class HandlerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc)

    def wait_ready(self, timeout: float = 60) -> None:
        """Ready once warmed up and the SDK's loop has started (it logs its version first)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"handler exited with {self.proc.returncode}:\n{self.logs()}")
            return "Starting Serverless Worker" in self.logs()

        wait_until(ready, timeout, "the handler process to start", 0.1)


def start_handler(env: dict[str, str], log: Path, *args: str) -> HandlerProcess:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "narrator.runpod_handler", *args],
            env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return HandlerProcess(proc, log)
