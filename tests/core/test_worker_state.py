"""The ready file: written by a worker, read by other processes; a writer that is gone is never "ready"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from narrator.errors import WorkerNotReady
from narrator.ops import worker_state
from tests.support.procs import ROOT


def write_from_another_process(path: Path, state: str, error: str = "") -> None:
    code = "import sys; from pathlib import Path; from narrator.ops import worker_state; " \
           "worker_state.write(Path(sys.argv[1]), sys.argv[2], 'w@host', error=sys.argv[3])"
    subprocess.run([sys.executable, "-c", code, str(path), state, error], cwd=ROOT, check=True, timeout=60)


def test_this_process_ready(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ready.json"
    worker_state.write(path, worker_state.READY, "gpu@host")
    status = worker_state.read(path)
    assert status.ready and status.pid == os.getpid() and status.hostname == "gpu@host"
    assert status.describe() == f"worker gpu@host (pid {os.getpid()}) is ready"
    assert worker_state.wait(path, timeout=1).ready
    worker_state.remove(path)
    assert worker_state.read(path).state == worker_state.ABSENT


def test_a_writer_that_exited_is_dead(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    write_from_another_process(path, worker_state.READY)
    status = worker_state.read(path)
    assert status.state == worker_state.DEAD and status.final and not status.ready
    assert "is no longer running (it was ready)" in status.describe()


def test_a_reused_pid_is_not_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    worker_state.write(path, worker_state.READY)
    body = json.loads(path.read_text())
    assert body["started"] is not None  # /proc is there: the start time tells a reused pid apart
    path.write_text(json.dumps({**body, "started": "1"}))  # same pid, another process's start time
    assert worker_state.read(path).state == worker_state.DEAD


def test_remove_leaves_another_processs_file(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    write_from_another_process(path, worker_state.FAILED, "warm-up failed: boom")
    worker_state.remove(path)
    status = worker_state.read(path)
    assert status.state == worker_state.FAILED and status.final
    assert status.describe().endswith("failed to start: warm-up failed: boom")


def test_unreadable_file_is_a_failure_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    path.write_text("{not json")
    status = worker_state.read(path)
    assert status.state == worker_state.FAILED and str(path) in status.error


def test_wait_has_a_deadline_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "never.json"
    with pytest.raises(WorkerNotReady, match=r"not ready within 0.3 s: no worker state .*never\.json"):
        worker_state.wait(path, timeout=0.3, poll=0.05)


def test_a_failure_left_from_before_the_wait_ends_it_only_at_the_deadline(tmp_path: Path) -> None:
    """A restarted container may find its previous life's file: the new worker writes over it, or the deadline hits."""
    path = tmp_path / "ready.json"
    write_from_another_process(path, worker_state.FAILED, "warm-up failed: no such model")
    with pytest.raises(WorkerNotReady, match="not ready within 0.3 s: .*failed to start: warm-up failed"):
        worker_state.wait(path, timeout=0.3, poll=0.05)
