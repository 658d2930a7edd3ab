"""``--test_input`` and ``--rp_serve_api``: the SDK's local modes, on the embedded default."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from narrator.settings import Settings
from narrator.storage import open_store
from tests.runpod.conftest import HandlerProcess, handler_env, start_handler
from tests.support.procs import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path, small_workflows: Path) -> Settings:
    return Settings(storage_url=(tmp_path / "store").as_uri(), workflows_dir=small_workflows, job_timeout=60)


def run_test_input(settings: Settings, job: dict[str, object], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrator.runpod_handler", *flags, "--test_input", json.dumps(job)],
        env=handler_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_test_input_runs_a_job_in_process(settings: Settings) -> None:
    done = run_test_input(settings, {"input": {"text": "Hello"}})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed successfully" in done.stdout
    outputs = [k for k in open_store(settings).list("jobs/") if k.endswith("/output.wav")]
    assert len(outputs) == 1
    samples, rate = sf.read(io.BytesIO(open_store(settings).get_bytes(outputs[0])))
    assert rate == 22050 and len(samples) > rate // 4


def test_generator_test_input_runs_the_job_and_shows_what_runsync_would_return(settings: Settings) -> None:
    done = run_test_input(settings, {"input": {"text": "Hello", "stream": True}}, "--generator")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "async_generator object" not in done.stdout
    # The SDK logs the aggregated output: each streamed chunk, then the result.
    (line,) = [ln for ln in done.stdout.splitlines() if "Job result:" in ln]
    assert "'chunk': 0" in line and "'success': True" in line and line.index("'chunk': 0") < line.index("'success'")
    assert len([k for k in open_store(settings).list("jobs/") if k.endswith("/output.wav")]) == 1


def test_test_input_with_a_bad_request_fails_naming_the_field(settings: Settings) -> None:
    done = run_test_input(settings, {"input": {"text": "Hello", "voice_settings": {"temperature": 0}}})
    assert done.returncode == 1
    assert "failed with error: voice_settings.temperature:" in done.stdout, done.stdout
    assert open_store(settings).list("jobs/") == []


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process: HandlerProcess = start_handler(
        handler_env(settings), tmp_path / "api.log",
        "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port),
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.proc.poll() is not None:
            raise AssertionError(f"API server exited:\n{process.logs()}")
        try:
            return httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, 60, "the API server to answer", 0.1)
        yield url
    finally:
        process.stop()


def test_serve_api_runsync(api: str) -> None:
    reply = httpx.post(f"{api}/runsync", json={"input": {"text": "Hello from the local API."}}, timeout=60).json()
    assert reply["status"] == "COMPLETED", reply
    out = reply["output"]
    assert out["success"] is True and out["text_length"] == 25
    samples, rate = sf.read(io.BytesIO(base64.b64decode(out["audio_b64"])))
    assert rate == out["sample_rate"] and abs(len(samples) / rate - out["duration_seconds"]) < 0.05

    bad = httpx.post(f"{api}/runsync", json={"input": {"text": ""}}, timeout=60).json()
    assert bad["status"] == "FAILED" and bad["error"].startswith("text:"), bad
