"""A producer that knows only the task name and JSON: a separate Celery app, no narrator import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from narrator.settings import Settings
from narrator.storage import open_store
from tests.support.procs import WorkerPool

pytestmark = pytest.mark.integration

PRODUCER = textwrap.dedent(
    """
    import json, sys, time
    from celery import Celery

    assert "narrator" not in sys.modules
    url = sys.argv[1]
    app = Celery("producer", broker=url, backend=url)
    request = {"text": "A message from another backend. It speaks only JSON.", "output": {"format": "wav"}}
    result = app.send_task("narrator.job", kwargs={"request": request}, queue="narrator.cpu")
    states = []
    deadline = time.monotonic() + 120
    while not result.ready() and time.monotonic() < deadline:
        # One read of state and info together: the final task may start (STARTED) in between.
        meta = app.backend.get_task_meta(result.id)
        if meta["status"] == "PROGRESS":
            states.append(meta["result"])
        time.sleep(0.05)
    value = result.get(timeout=5)
    bad = app.send_task("narrator.job", kwargs={"request": {"text": ""}}, queue="narrator.cpu")
    try:
        bad.get(timeout=60, propagate=True)
        error = None
    except Exception as exc:
        error = str(exc)
    assert "narrator" not in sys.modules
    print(json.dumps({"id": result.id, "result": value, "progress": states, "error": error}))
    """
)


def test_send_task_from_a_celery_app_that_never_imports_narrator(
    broker_settings: Settings, worker_pool: WorkerPool, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    worker_pool.start(broker_settings, queues="narrator.cpu,narrator.gpu", concurrency=2)
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    out = subprocess.run(
        [sys.executable, str(script), broker_settings.broker_url],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr + worker_pool.logs()
    report = json.loads(out.stdout.strip().splitlines()[-1])
    result = report["result"]
    assert result["success"] is True and result["format"] == "wav"
    assert result["job_id"] == report["id"].replace("-", "")
    assert result["duration_seconds"] > 1.0
    assert open_store(broker_settings).exists(result["output_key"])
    assert all(p["chunks_done"] <= p["chunks_total"] for p in report["progress"])
    assert report["error"] is not None and "text" in report["error"]
