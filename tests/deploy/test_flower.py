"""Flower with basic auth over the real Redis and real workers, seen through headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from narrator import jobs
from narrator.settings import Settings
from narrator.tasks.pipeline import chunk_id, stage_id
from tests.deploy.chromium import Browser
from tests.support.flower import Flower, flower_process
from tests.support.procs import WorkerPool, wait_until

pytestmark = pytest.mark.integration

TEXT = (
    "Snow fell on the village all afternoon, and the church bell rang twice before dark.\n\n"
    "By evening the roads were white and quiet, and every window glowed."
)


@pytest.fixture
def flower(broker_settings: Settings, tmp_path: Path) -> Iterator[Flower]:
    yield from flower_process(broker_settings, tmp_path)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path)
    yield b
    b.close()


def test_flower_lists_a_jobs_tasks_behind_basic_auth(
    broker_settings: Settings, worker_pool: WorkerPool, flower: Flower, browser: Browser, tmp_path: Path
) -> None:
    worker = worker_pool.start(broker_settings, queues="narrator.cpu,narrator.gpu", concurrency=2)
    # Flower hears the worker's events before the job starts, so it sees every task.
    wait_until(lambda: any(name.startswith(worker.name) for name in flower.alive_workers()), 30,
               f"Flower to hear from the worker:\n{flower.logs()[-3000:]}", 0.2)

    result = jobs.submit({"text": TEXT}, broker_settings).wait(timeout=120)
    expected = [stage_id(result.job_id)] + [chunk_id(result.job_id, i) for i in range(result.chunks)]

    # Without credentials: 401, for the pages and their data alike.
    for path in ("/", "/tasks", "/tasks/datatable", "/api/tasks"):
        assert httpx.get(flower.url + path, timeout=10).status_code == 401, path
    assert httpx.get(flower.url + "/tasks", auth=("ops", "wrong"), timeout=10).status_code == 401
    # Flower's /metrics answers anyone: that is why compose keeps Flower on the internal network, no host port.
    assert httpx.get(flower.url + "/metrics", timeout=10).status_code == 200

    browser.basic_auth(flower.user, flower.password)
    browser.goto(flower.url + "/tasks")

    def listed() -> bool:
        text = browser.text()
        return all(task_id in text for task_id in expected) and "narrator.synthesize_chunk" in text

    try:
        wait_until(listed, 30, "the tasks page to list the job's tasks", 0.25)
    finally:
        shot = browser.screenshot(tmp_path / "flower-tasks.png")
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = browser.text()
    assert "SUCCESS" in text and "narrator.upload" in text


def test_flower_healthcheck_answers_without_credentials(flower: Flower) -> None:
    """compose.yaml's healthcheck for Flower fetches /healthcheck with no credentials."""
    answer = httpx.get(flower.url + "/healthcheck", timeout=10)
    assert answer.status_code == 200 and answer.text == "OK"
    assert httpx.get(flower.url + "/api/workers", timeout=10).status_code == 401
