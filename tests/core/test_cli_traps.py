"""First-hour traps, through the command as a user types it: the exit code and the first line of stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrator.job.store import JobStore
from narrator.storage import FileStore
from tests.support.procs import ROOT

EXAMPLE = ROOT / "examples" / "tell-tale-heart.txt"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def narrator(store_dir: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env["NARRATOR_STORAGE_URL"] = store_dir.as_uri()  # no broker (unless extra says): the one-machine default
    env.update(extra or {})
    return subprocess.run([sys.executable, "-m", "narrator.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def first_line(run: subprocess.CompletedProcess[str]) -> str:
    return run.stderr.splitlines()[0] if run.stderr else ""


def test_submit_with_no_broker_refuses_instead_of_printing_an_id(store_dir: Path) -> None:
    run = narrator(store_dir, "submit", "Hello there.")
    assert run.returncode == 1 and run.stdout == ""
    assert first_line(run).startswith("narrator: NARRATOR_BROKER_URL: submit queues a job for workers")
    assert "narrator speak" in first_line(run)
    assert not store_dir.exists() or not any(store_dir.rglob("*")), "a refused job left something stored"


@pytest.mark.parametrize("command", [["status"], ["result", "-o", "out.wav"]])
def test_an_unknown_job_is_not_found(store_dir: Path, command: list[str]) -> None:
    job_id = uuid.uuid4().hex
    run = narrator(store_dir, command[0], job_id, *command[1:])
    assert run.returncode == 1 and run.stdout == ""
    assert first_line(run) == (f"narrator: no job {job_id} in {store_dir.as_uri()} "
                               "(check the id, and NARRATOR_STORAGE_URL)")


def test_result_of_a_cancelled_job_says_so(store_dir: Path) -> None:
    job = JobStore(FileStore(store_dir), uuid.uuid4().hex)
    job.put_request({"text": "Hello."})
    FileStore(store_dir).put_bytes(job.cancel_key, b"{}")
    assert '"state": "CANCELLED"' in narrator(store_dir, "status", job.job_id).stdout
    run = narrator(store_dir, "result", job.job_id, "-o", "out.wav")
    assert run.returncode == 1
    said = f"narrator: job {job.job_id} was cancelled: it has no audio (narrator status {job.job_id})"
    assert first_line(run) == said


def test_a_voice_file_that_does_not_exist_is_named(store_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing-voice.wav"
    run = narrator(store_dir, "speak", "Hello.", "--voice", str(missing), "-o", str(tmp_path / "o.wav"))
    assert run.returncode == 2
    assert first_line(run) == f"narrator: invalid request: --voice: {missing}: no such file"


def test_a_voice_file_that_is_not_audio_says_so(store_dir: Path, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.wav"
    text_file.write_text("this is not audio")
    run = narrator(store_dir, "speak", "Hello.", "--voice", str(text_file), "-o", str(tmp_path / "o.wav"))
    assert run.returncode == 2
    assert first_line(run).startswith(f"narrator: invalid request: --voice: {text_file}: not readable audio")


def test_chunk_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"  # far more table than a pipe buffers: the writer meets the closed pipe
    book.write_text("\n\n".join([EXAMPLE.read_text()] * 200))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "narrator.cli", "chunk", str(book)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout is not None and proc.stderr is not None
    assert "text" in proc.stdout.readline()  # the header, as `head -1` reads it
    proc.stdout.close()  # then the reader goes away
    assert proc.wait(60) == 0
    assert "Traceback" not in proc.stderr.read()


def test_the_errors_the_readme_names_import_from_narrator() -> None:
    import narrator

    assert {"InvalidRequest", "JobTimeout", "JobFailed", "NarratorError"} <= set(narrator.__all__)
    assert issubclass(narrator.InvalidRequest, narrator.NarratorError)
    assert issubclass(narrator.JobTimeout, narrator.NarratorError)


def test_speak_counts_one_chunk_as_one(store_dir: Path, tmp_path: Path) -> None:
    run = narrator(store_dir, "speak", "Just one short sentence.", "-o", str(tmp_path / "one.wav"))
    assert run.returncode == 0, run.stderr
    assert ", 1 chunk, " in run.stderr.splitlines()[-1]


def test_a_voice_the_model_cannot_use_is_said_not_ignored(store_dir: Path, tmp_path: Path) -> None:
    voice = tmp_path / "me.wav"
    sf.write(voice, 0.2 * np.sin(2 * np.pi * 180 * np.arange(24000) / 24000), 24000)
    run = narrator(store_dir, "speak", "Hello there.", "--voice", str(voice), "-o", str(tmp_path / "o.wav"))
    assert run.returncode == 0, run.stderr
    assert first_line(run) == ("narrator: model 'local' cannot clone a voice, so --voice is not used "
                               "(these can: vibevoice-1.5b, vibevoice-large; --model)")


def test_submit_to_a_redis_that_is_down_is_one_line_and_leaves_nothing(store_dir: Path) -> None:
    from tests.support.procs import free_port

    port = free_port()  # nothing listens there
    env = {"NARRATOR_BROKER_URL": f"redis://user:secret@127.0.0.1:{port}/0"}
    run = narrator(store_dir, "submit", "Hello there.", extra=env)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr  # not Celery's reconnect loop
    assert first_line(run).startswith(f"narrator: broker unreachable at redis://***@127.0.0.1:{port}/0: ")
    assert first_line(run).endswith("was not queued (check NARRATOR_BROKER_URL)") and "secret" not in run.stderr
    assert not store_dir.exists() or not [p for p in store_dir.rglob("*") if p.is_file()]



def test_a_setting_that_does_not_parse_is_one_line_naming_it(store_dir: Path) -> None:
    run = narrator(store_dir, "status", "anything", extra={"NARRATOR_JOB_TIMEOUT": "soon"})
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == "narrator: bad configuration: NARRATOR_JOB_TIMEOUT: cannot parse 'soon' as float\n"
