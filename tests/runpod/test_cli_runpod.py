"""``narrator runpod ...`` against the fake RunPod REST API over real HTTP, with in-process fake workers.

The commands run in this process (``narrator.cli.main``) with the environment a user would set;
the Ctrl-C test runs one as its own process, to send it a real SIGINT.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from narrator.cli import main
from tests.fakes.runpod_api import ENDPOINT
from tests.fakes.runpod_rest import API_KEY, FakeServerless, NarratorWork, Work, tone_wav
from tests.support.procs import ROOT

MakeFake = Callable[..., FakeServerless]
TEXT = "Hello from the command line."


@pytest.fixture
def make_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeFake]:
    """A fake endpoint per call; the environment points ``narrator`` at the last one."""
    fakes: list[FakeServerless] = []
    for name in [k for k in os.environ if k.startswith(("NARRATOR_RUNPOD", "RUNPOD_"))]:
        monkeypatch.delenv(name)

    def make(work: Work | None = None, **options: Any) -> FakeServerless:
        fake = FakeServerless(work=work or NarratorWork(), **{"workers": 1, **options}).__enter__()
        fakes.append(fake)
        monkeypatch.setenv("NARRATOR_RUNPOD_API_KEY", API_KEY)
        monkeypatch.setenv("NARRATOR_RUNPOD_API_URL", fake.api_url)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def narrator(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["runpod", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def last_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    return lines[-1] if lines else ""


def test_run_prints_the_job_id_and_returns(make_fake: MakeFake, capsys: pytest.CaptureFixture[str]) -> None:
    fake = make_fake()
    code, out, _ = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT, "--speed", "1.1")
    assert code == 0
    job = fake.wait_status(out.strip(), {"COMPLETED"})
    assert job.input == {"text": TEXT, "voice_settings": {"speed": 1.1}}


def test_run_with_output_shows_progress_prints_urls_in_order_and_writes_the_wav(
    make_fake: MakeFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    work = NarratorWork(chunks=3, folder=tmp_path)
    fake = make_fake(work)
    work.seen = fake.progress_seen  # each update is shown before the worker goes on
    out_wav = tmp_path / "out.wav"
    code, out, err = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT, "--stream", "-o", str(out_wav))
    assert code == 0, err
    bars = [line for line in err.splitlines() if " chunks " in line]
    assert [b.split()[1] for b in bars if "synthesizing" in b] == ["1/3", "2/3", "3/3"]
    assert bars[-1].endswith("success") and "3/3" in bars[-1]
    urls, _, rest = out.partition("{")
    assert urls.split() == [(tmp_path / f"chunk-{i}.flac").as_uri() for i in range(3)]
    result = json.loads("{" + rest)
    assert "audio_b64" not in result and result["audio_b64_length"] > 1000 and result["success"] is True
    samples, rate = sf.read(out_wav)
    assert rate == 22050 and abs(len(samples) / rate - 1.5) < 0.01
    assert fake.job(fake.wait_submitted().id).input["stream"] is True


def test_output_is_downloaded_from_audio_url_when_not_inline(
    make_fake: MakeFake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make_fake(NarratorWork(inline=False, folder=tmp_path))
    out_flac = tmp_path / "got.wav"
    code, out, err = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT, "-o", str(out_flac))
    assert code == 0, err
    assert out_flac.read_bytes() == (tmp_path / "output.wav").read_bytes()
    assert json.loads(out)["audio_url"] == (tmp_path / "output.wav").as_uri()


def test_status_cancel_and_health(make_fake: MakeFake, capsys: pytest.CaptureFixture[str]) -> None:
    gate = threading.Event()
    fake = make_fake(NarratorWork(gate=gate))
    code, out, _ = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT)
    job_id = out.strip()
    fake.wait_status(job_id, {"IN_PROGRESS"})
    code, out, _ = narrator(capsys, "status", job_id, "--endpoint", ENDPOINT)
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "IN_PROGRESS" and shown["output"]["chunks_done"] == 3
    code, out, _ = narrator(capsys, "health", "--endpoint", ENDPOINT)
    assert code == 0 and json.loads(out)["jobs"]["inProgress"] == 1
    code, _, err = narrator(capsys, "cancel", job_id, "--endpoint", ENDPOINT)
    assert code == 0 and last_line(err) == f"narrator: RunPod job {job_id}: CANCELLED"
    assert fake.cancels == [job_id] and fake.running() == []


FAILURES: dict[str, tuple[dict[str, Any], list[str], int, str]] = {
    # name: (fake options, extra argv, exit code, the one line on stderr)
    "wrong key": ({"api_key": "another-key"}, [], 1,
                  "narrator: RunPod refused the API key (HTTP 401); check NARRATOR_RUNPOD_API_KEY (or RUNPOD_API_KEY)"),
    "unknown endpoint": ({"endpoints": ["other"]}, [], 1,
                         f"narrator: no RunPod endpoint '{ENDPOINT}' (check the endpoint id)"),
    "rate limited": ({"fault": (99, 429)}, [], 1,
                     f"narrator: RunPod rate-limited /run on endpoint '{ENDPOINT}' (HTTP 429); gave up after 5 tries"),
    "another model": ({"work": NarratorWork(error="model: unknown model 'local' (this endpoint has vibevoice-large)")},
                      ["--wait"], 1, "failed: model: unknown model 'local' (this endpoint has vibevoice-large)"),
    "never picked up": ({"workers": 0}, ["--wait", "--queue-timeout", "0.5"], 1,
                        "(no worker free? check the endpoint's max workers and GPU availability); it was cancelled"),
    "no text": ({}, ["--wait"], 2, "narrator: invalid request: text: "),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_failure_ends_with_one_line(make_fake: MakeFake, capsys: pytest.CaptureFixture[str], name: str) -> None:
    options, argv, code_wanted, line = FAILURES[name]
    options = dict(options)
    fault = options.pop("fault", None)
    fake = make_fake(**options)
    if fault:
        fake.fail_next(fault[0], fault[1], retry_after="0")
    text = [] if name == "no text" else [TEXT]
    code, out, err = narrator(capsys, "run", "--endpoint", ENDPOINT, *text, *argv)
    assert code == code_wanted, err
    assert line in last_line(err)
    assert API_KEY not in err and out == ""
    assert fake.running() == []
    if name == "never picked up":
        job_id = fake.wait_submitted().id
        assert last_line(err) == (
            f"narrator: endpoint {ENDPOINT} did not start job {job_id} within 0.5 s (no worker free? check the "
            "endpoint's max workers and GPU availability); it was cancelled")
        assert fake.cancels == [job_id]


def test_a_missing_key_names_both_variables(make_fake: MakeFake, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    make_fake()
    monkeypatch.delenv("NARRATOR_RUNPOD_API_KEY")
    code, _, err = narrator(capsys, "health", "--endpoint", ENDPOINT)
    assert code == 1 and "NARRATOR_RUNPOD_API_KEY" in last_line(err) and "RUNPOD_API_KEY" in last_line(err)


def test_transient_errors_are_retried_before_anything_is_said(
    make_fake: MakeFake, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = make_fake()
    fake.fail_next(2, 500, route="run")
    fake.fail_next(1, 429, retry_after="0", route="status")
    code, out, err = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT, "--wait")
    assert code == 0, err
    assert json.loads(out)["success"] is True
    assert fake.count("run", 500) == 2 and fake.count("status", 429) == 1


SMOKE: dict[str, tuple[NarratorWork, str]] = {
    "not audio": (NarratorWork(audio=b"RIFF but not really a wave file at all"), "the audio does not decode"),
    "cut short": (NarratorWork(audio=tone_wav(1.5)[:2000]), "cut short"),
    "empty": (NarratorWork(audio=b""), "no audio_b64"),
    "wrong rate": (NarratorWork(sample_rate=24000), "it is at 22050 Hz, the result says 24000"),
    "stereo": (NarratorWork(audio=tone_wav(1.5, channels=2)), "it has 2 channels, not 1"),
    "flac": (NarratorWork(audio=tone_wav(1.5, fmt="FLAC")), "it is FLAC, not WAV"),
    "float": (NarratorWork(audio=tone_wav(1.5, subtype="FLOAT")), "its samples are FLOAT, not PCM"),
    "handler error": (NarratorWork(error="text: text is empty"), "failed: text: text is empty"),
}


def test_smoke_passes_on_a_good_endpoint(make_fake: MakeFake, capsys: pytest.CaptureFixture[str]) -> None:
    fake = make_fake(NarratorWork(chunks=2))
    code, out, err = narrator(capsys, "smoke", "--endpoint", ENDPOINT, "--timeout", "60")
    assert code == 0, err
    job_id = fake.wait_submitted().id
    assert out.startswith(f"smoke test passed on endpoint {ENDPOINT} (job {job_id}): 1.00 s of mono PCM_16 WAV "
                          "at 22050 Hz (")
    assert "model local, queued" in out and len(out.strip().splitlines()) == 1
    sent = fake.job(job_id).input
    assert sent["output"] == {"format": "wav", "audio_b64": True} and sent["text"]


@pytest.mark.parametrize("name", list(SMOKE))
def test_smoke_fails_with_the_reason(make_fake: MakeFake, capsys: pytest.CaptureFixture[str], name: str) -> None:
    work, reason = SMOKE[name]
    make_fake(work)
    code, out, err = narrator(capsys, "smoke", "--endpoint", ENDPOINT, "--timeout", "60")
    assert code == 1 and out == ""
    assert reason in last_line(err), err


def test_ctrl_c_while_waiting_cancels_the_remote_job(make_fake: MakeFake) -> None:
    fake = make_fake(NarratorWork(gate=threading.Event()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrator.cli", "runpod", "run", "--endpoint", ENDPOINT, TEXT, "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job = fake.wait_submitted()
        fake.wait_status(job.id, {"IN_PROGRESS"})
        fake.progress_seen(job.id, 3)  # the command is in its wait loop
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert f"interrupted: RunPod job {job.id} was cancelled" in err and "Traceback" not in err
    assert fake.cancels == [job.id] and fake.running() == []
    assert out == ""


def test_the_written_wav_is_what_the_endpoint_sent(make_fake: MakeFake, capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    audio = tone_wav(0.7, rate=16000)
    make_fake(NarratorWork(audio=audio, rate=16000))
    code, _, err = narrator(capsys, "run", "--endpoint", ENDPOINT, TEXT, "-o", str(tmp_path / "x.wav"))
    assert code == 0, err
    assert (tmp_path / "x.wav").read_bytes() == audio
    assert sf.info(io.BytesIO(audio)).samplerate == 16000
