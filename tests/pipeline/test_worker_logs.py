"""What a worker writes, read from its stdout and stderr as an operator's log collector reads them.

With NARRATOR_LOG_JSON=true every line is one JSON object with its time, from the main process
(Celery's own records, start and shutdown) and the pool alike; in plain mode every line starts
with its time. A user's cancel is one INFO line without a traceback; a real failure is an ERROR.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from narrator import jobs
from narrator.errors import JobCancelled, JobFailed
from narrator.settings import Settings
from tests.support.comfy import FakeProcess
from tests.support.procs import ROOT, settings_env, stop_group, wait_until

pytestmark = pytest.mark.integration

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
#: One pool process: two chunks cancelled at the same moment may both be first to record the job's end
#: (JobStore.record_error checks, then writes), and log it twice.
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "narrator.tasks.worker", "worker",
                 "-Q", "narrator.cpu,narrator.gpu", "-c", "1", "-n", "logs@%h", "--loglevel", "INFO"]
NARRATOR_WORKER = [sys.executable, "-m", "narrator.cli", "worker", "--queues", "all", "--concurrency", "2"]
#: In the request's text only: task arguments must never reach a log line.
MARKER = "Quillwort"
MODEL = "vibevoice-large"  # through the fake ComfyUI


@dataclass
class Output:
    stdout: Path
    stderr: Path

    def text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.stdout, self.stderr) if p.exists())

    def lines(self) -> list[str]:
        return [line for line in self.text().splitlines() if line.strip()]


@contextmanager
def worker(command: list[str], settings: Settings, folder: Path, json_logs: bool) -> Iterator[Output]:
    """A worker with its stdout and stderr in files of their own; stopped by SIGTERM, as ``docker stop`` does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env.update(settings_env(settings), PYTHONPATH=str(ROOT), NARRATOR_LOG_JSON="true" if json_logs else "false")
    out = Output(folder / "stdout.log", folder / "stderr.log")
    with out.stdout.open("wb") as stdout, out.stderr.open("wb") as stderr:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        wait_until(lambda: _ready(proc, out), 60, "the worker to be ready")
        yield out
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # to the main process only: its pool is its to stop
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                stop_group(proc, grace=5)


def _ready(proc: subprocess.Popen[bytes], out: Output) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"worker exited with {proc.returncode}:\n{out.text()[-4000:]}")
    return " ready." in out.text()


def records(out: Output) -> list[dict[str, Any]]:
    parsed = []
    for line in out.lines():
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(record, dict), line
        assert TIME.match(str(record.get("time"))), line
        parsed.append(record)
    return parsed


def about(job_id: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in found if job_id in json.dumps(r)]


def logged(out: Output, job_id: str, message: str) -> bool:
    return any(r.get("message") == message for r in about(job_id, records(out)))


def long_text(paragraphs: int) -> str:
    sentence = "This paragraph belongs to a job that is cancelled while its chunks are on the GPU."
    return "\n\n".join(f"Paragraph {i}. " + " ".join([sentence] * 3) for i in range(paragraphs))


def test_json_worker_every_line_json_cancel_is_info_failure_is_error(
    broker_settings: Settings, fake_comfy_process: FakeProcess, tmp_path: Path
) -> None:
    fake = fake_comfy_process
    settings = broker_settings.with_(comfy_url=fake.url)
    with worker(CELERY_WORKER, settings, tmp_path, json_logs=True) as out:
        done = jobs.submit({"text": f"{MARKER} is a word no log line may show.", "model": MODEL}, settings)
        assert done.wait(timeout=60).success

        fake.configure(hold=True)  # a chunk runs until interrupted: the cancel certainly finds one running
        cancelled = jobs.submit({"text": long_text(6), "model": MODEL}, settings)
        wait_until(lambda: int(str(fake.stats()["prompts_posted"])) >= 2, 60, "a chunk of the job on ComfyUI")
        cancelled.cancel()
        with pytest.raises(JobCancelled):
            cancelled.wait(timeout=60)
        wait_until(lambda: logged(out, cancelled.id, "job cancelled"), 30, "the worker to log the cancel")

        fake.configure(hold=False, fail_node="VibeVoiceTTS")
        failed = jobs.submit({"text": "A job that fails on the GPU.", "model": MODEL}, settings)
        with pytest.raises(JobFailed):
            failed.wait(timeout=60)
        wait_until(lambda: logged(out, failed.id, "job failed"), 30, "the worker to log the failure")

    found = records(out)
    messages = {r["message"] for r in found}
    # Main process (Celery's own records, start, shutdown) and pool processes (the tasks) alike.
    assert {"worker starting", "worker shutting down"} <= messages
    assert any(m.startswith("logs@") and m.endswith(" ready.") for m in messages)
    assert any(m.startswith("Task narrator.job[") and m.endswith("] received") for m in messages)
    assert any(r["message"] == "chunk done" and r.get("job_id") == done.id for r in found)
    assert MARKER not in out.text(), "a task's arguments reached the log"

    cancel = about(cancelled.id, found)
    assert [r["level"] for r in cancel if r["message"] == "job cancelled"] == ["INFO"]
    assert not [r for r in cancel if r["level"] not in ("DEBUG", "INFO")], "a cancel logged above INFO"
    assert not [r for r in cancel if "exc" in r], "a cancel logged with a traceback"

    failure = about(failed.id, found)
    assert [r["level"] for r in failure if r["message"] == "job failed"] == ["ERROR"]
    assert not [r for r in found if r["level"] in ("ERROR", "CRITICAL") and r not in failure], "an ERROR for no failure"


def test_plain_worker_lines_start_with_their_time(
    broker_settings: Settings, fake_comfy_process: FakeProcess, tmp_path: Path
) -> None:
    settings = broker_settings.with_(comfy_url=fake_comfy_process.url)
    with worker(NARRATOR_WORKER, settings, tmp_path, json_logs=False) as out:
        handle = jobs.submit({"text": "Plain lines, each with its time.", "model": MODEL}, settings)
        assert handle.wait(timeout=60).success

    lines = out.lines()
    untimed = [line for line in lines if not TIME.match(line.split(" ", 1)[0])]
    assert not untimed, "\n".join(untimed[:20])
    assert any(" INFO narrator.job.synthesize: chunk done " in line for line in lines)  # a pool process
    assert any(" INFO celery.apps.worker: " in line and line.endswith(" ready.") for line in lines)  # the main one
    assert any(" INFO narrator.tasks.worker_logs: worker shutting down " in line for line in lines)
