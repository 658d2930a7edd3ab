"""bench/gpu.py without a GPU: it stays out of ``python -m bench`` without CUDA, its figures and their
format, and a whole run against the fake ComfyUI, started by command (cold start) or already running."""

from __future__ import annotations

import math
import socket
import sys
from pathlib import Path

import pytest

from bench.__main__ import default_modules, format_row
from bench.gpu import Options, measure, nvidia_smi_gpus, rows_for
from narrator.ops.trial import TrialResult
from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port

GIB = 2**30


def test_gpu_bench_runs_by_default_only_with_cuda() -> None:
    assert "gpu" not in default_modules(cuda=False)
    assert default_modules(cuda=True)[-1] == "gpu"


def _script(folder: Path, body: str) -> str:
    path = folder / "nvidia-smi"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_nvidia_smi_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = _script(tmp_path, 'echo "GPU 0: NVIDIA L4 (UUID: GPU-5f1c)"')
    assert nvidia_smi_gpus(listed)
    no_driver = _script(tmp_path, "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                                  "driver.\"; exit 9")
    assert not nvidia_smi_gpus(no_driver)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not nvidia_smi_gpus()  # not installed


def _result(vram_peak: int | None) -> TrialResult:
    return TrialResult(model="m", first_chunk_seconds=4.0, first_chunk_at=0.0, words=100, synth_seconds=5.0,
                       audio_seconds=40.0, vram_peak=vram_peak)


def test_figures_and_their_format() -> None:
    rows = rows_for("vibevoice-1.5b", _result(6 * GIB), cold_start=None)
    assert [r[0] for r in rows] == [
        "gpu vibevoice-1.5b cold start to first chunk stored",
        "gpu vibevoice-1.5b synthesis per 100 words",
        "gpu vibevoice-1.5b real-time factor",
        "gpu vibevoice-1.5b first chunk (server up)",
        "gpu vibevoice-1.5b peak VRAM (polled)",
    ]
    cold, speed, rtf, first, vram = rows
    assert cold[1:] == (None, "s", 30.0, None)
    assert speed[1:] == (5.0, "s", 10.0, 0.5) and rtf[1:] == (0.125, "x", None, None)
    assert first[1] == 4.0 and vram[1:] == (6.0, "GiB", 8.0, 0.75)
    assert format_row(cold).split() == ["gpu", "vibevoice-1.5b", "cold", "start", "to", "first", "chunk", "stored",
                                        "n/a", "s", "30"]
    assert format_row(vram).endswith("6 GiB                 8    0.75x")
    warm = rows_for("vibevoice-large", _result(None), cold_start=12.0)
    assert warm[0][1:] == (12.0, "s", 30.0, 0.4)
    assert warm[-1][1:] == (None, "GiB", None, None)  # no GPU in the readings, no VRAM target for Large
    assert math.isnan(rows_for("x", TrialResult("x", 1, 0, 0, 1, 0), None)[1][1])


@pytest.mark.fake_comfy(synth_seconds=0.2)
def test_against_a_running_server_cold_start_is_na(fake_comfy: FakeComfy) -> None:
    settings = Settings(workflows_dir=ROOT / "workflows", comfy_url=fake_comfy.url, comfy_timeout=10)
    fake_comfy.configure(drop_files=["VibeVoice/VibeVoice-Large/tokenizer.json"])  # not ready: left out
    rows = {r[0]: r for r in measure(Options(settings))}
    assert set(rows) == {r[0] for r in rows_for("vibevoice-1.5b", _result(0), None)}
    assert rows["gpu vibevoice-1.5b cold start to first chunk stored"][1] is None
    per_100 = rows["gpu vibevoice-1.5b synthesis per 100 words"][1]
    assert per_100 is not None and 0.2 / 103 * 100 <= per_100 < 3.0 / 103 * 100
    assert rows["gpu vibevoice-1.5b peak VRAM (polled)"][1] == 6.5  # the fake's context + VibeVoice-1.5B


def test_cold_start_from_a_start_command(tmp_path: Path) -> None:
    port = free_port()
    command = f"env PYTHONPATH={ROOT} {sys.executable} -m tests.fakes.comfyui --port {port} --synth-seconds 0.1 " \
              f"--root {tmp_path / 'comfy'}"
    settings = Settings(workflows_dir=ROOT / "workflows", comfy_url=f"http://127.0.0.1:{port}", comfy_timeout=10)
    rows = {r[0]: r[1] for r in measure(Options(settings, start=command, models=("vibevoice-1.5b",),
                                                start_timeout=30))}
    cold, first = rows["gpu vibevoice-1.5b cold start to first chunk stored"], rows[
        "gpu vibevoice-1.5b first chunk (server up)"]
    assert cold is not None and first is not None and first + 0.1 < cold < 30  # process start and import count
    with pytest.raises(ConnectionRefusedError):  # stopped again
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
