"""End to end: ``narrator runpod`` -> the fake RunPod REST API -> a real ``python -m narrator.runpod_handler``.

The handler takes the jobs submitted with ``/run`` through the worker-side protocol (job-take,
job-done progress, job-stream, result), on the embedded voice with small chunks: the command
sees the real progress, the real stream URLs and the real audio.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from narrator.cli import main
from narrator.settings import Settings
from tests.fakes.runpod_api import ENDPOINT
from tests.fakes.runpod_rest import API_KEY, FakeServerless
from tests.runpod.conftest import LONG_TEXT, HandlerProcess, handler_env, start_handler

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory, small_workflows: Path) -> Iterator[FakeServerless]:
    folder = tmp_path_factory.mktemp("runpod-rest-e2e")
    settings = Settings(storage_url=(folder / "store").as_uri(), workflows_dir=small_workflows, job_timeout=120)
    with FakeServerless(workers=0, lockstep=True) as fake:
        process: HandlerProcess = start_handler(handler_env(settings, fake.env()), folder / "handler.log")
        try:
            process.wait_ready()
            yield fake
        finally:
            process.stop()
        assert fake.running() == [], process.logs()[-4000:]


@pytest.fixture
def user_env(endpoint: FakeServerless, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith(("NARRATOR_RUNPOD", "RUNPOD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NARRATOR_RUNPOD_API_KEY", API_KEY)
    monkeypatch.setenv("NARRATOR_RUNPOD_API_URL", endpoint.api_url)


@pytest.mark.usefixtures("user_env")
def test_run_streams_shows_progress_and_writes_the_handlers_wav(
    endpoint: FakeServerless, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = tmp_path / "in.txt"
    text.write_text(LONG_TEXT[:330], encoding="utf-8")
    out_wav = tmp_path / "out.wav"
    code = main(["runpod", "run", "--endpoint", ENDPOINT, "--file", str(text), "--stream", "-o", str(out_wav)])
    out, err = capsys.readouterr()
    assert code == 0, err
    urls, _, rest = out.partition("{")
    result = json.loads("{" + rest)
    assert result["success"] is True and result["chunks"] >= 2 and result["audio_b64_length"] > 1000
    prefix = f"/jobs/{result['job_id']}/chunks/"
    assert [u.split(prefix)[-1] for u in urls.split()] == [f"{i:05d}.flac" for i in range(result["chunks"])]
    assert all(u.startswith("file://") and Path(u.removeprefix("file://")).stat().st_size > 0 for u in urls.split())
    (job,) = [j for j in endpoint.jobs.values() if j.input.get("stream") is True]
    posted = [r.body["output"]["chunks_done"] for r in endpoint.events(job.id, ("progress",))]
    bars = [line.split()[1] for line in err.splitlines() if " chunks " in line]
    drawn = [int(b.split("/")[0]) for b in bars if not b.endswith("?")]
    # Every update the handler posted, in order (lockstep: each was shown before the next), then the whole.
    assert _runs(drawn[:-1]) == _runs(posted) and drawn[-1] == result["chunks"], err
    assert err.splitlines()[-2].endswith("success"), err
    samples, rate = sf.read(out_wav)
    assert rate == 22050 and samples.ndim == 1
    assert abs(len(samples) / rate - result["duration_seconds"]) < 0.05
    assert job.history == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    kinds = [r.kind for r in endpoint.events(job.id)]
    assert kinds[0] == "take" and kinds[-1] == "done" and kinds.count("stream") == result["chunks"]


@pytest.mark.usefixtures("user_env")
def test_smoke_passes_on_the_real_handler(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["runpod", "smoke", "--endpoint", ENDPOINT, "--timeout", "120"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "smoke test passed" in out and "mono PCM_16 WAV at 22050 Hz" in out and "model local" in out


@pytest.mark.usefixtures("user_env")
def test_an_endpoint_without_the_model_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["runpod", "run", "--endpoint", ENDPOINT, "Hello", "--model", "vibevoice-9000", "--wait"])
    _, err = capsys.readouterr()
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("narrator: RunPod job ") and "failed: model:" in line and "vibevoice-9000" in line, err



def _runs(values: list[int]) -> list[int]:
    """Repeats collapsed: the bar draws a changed status answer once, and equal updates look alike."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
