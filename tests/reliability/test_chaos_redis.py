"""Redis (broker and result backend) restarts under a running job: with its append-only file the job
goes on; without persistence the job is lost, and whoever waits for it says so by its deadline."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from narrator import jobs, runpod_handler
from narrator.job.store import JobStore
from narrator.result import JobState
from narrator.settings import Settings
from narrator.storage import ObjectStore, open_store
from tests.reliability.chaos_support import (
    assert_complete_in_order,
    cluster,
    paragraphs,
    request,
    wait_for,
)
from tests.support.procs import ROOT, RedisServer, free_port, settings_env, wait_until

pytestmark = pytest.mark.integration

CHUNKS = 12
DEADLINE = 20.0


def own_redis(folder: Path, appendonly: bool) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), folder / "redis", appendonly=appendonly)
    server.folder.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from own_redis(tmp_path, appendonly=True)


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from own_redis(tmp_path, appendonly=False)


def settings_for(server: RedisServer, folder: Path) -> Settings:
    return Settings(broker_url=server.url, storage_url=(folder / "store").as_uri(), default_model="vibevoice-large")


def chunks_done(store: ObjectStore, job_id: str) -> int:
    return len(JobStore(store, job_id).done())


def test_job_survives_a_redis_restart_with_aof(aof_redis: RedisServer, tmp_path: Path) -> None:
    settings = settings_for(aof_redis, tmp_path)
    with cluster(settings, tmp_path, gpu=1, cpu=1, synth_seconds=0.5) as running:
        handle = jobs.submit(request(paragraphs(CHUNKS, "aof")), settings)
        store = open_store(settings)
        wait_until(lambda: chunks_done(store, handle.id) >= 3, 60, "three chunks to finish")
        (fake,) = running.fakes
        fake.configure(hold=True)  # the chunk on ComfyUI waits for the restart: the job is certainly mid-way
        aof_redis.restart()  # SIGTERM: Redis writes its append-only file out, then comes back from it
        assert chunks_done(store, handle.id) < CHUNKS, "the job finished before Redis restarted"
        fake.configure(hold=False)

        result = wait_for(handle, 90, running.pool)

        assert_complete_in_order(settings, handle, result, CHUNKS)


def start_cli(settings: Settings, text: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "narrator.cli", "submit", "--wait", "--timeout", str(DEADLINE), "-m",
            "vibevoice-large", "--format", "flac", "-"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    proc.stdin.write(text.encode())
    proc.stdin.close()
    return proc


def run_handler(settings: Settings, text: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    job = {"id": "req-volatile", "input": {"text": text, "model": "vibevoice-large", "timeout": DEADLINE}}
    out = runpod_handler.handler(job)
    return out, time.monotonic() - started


def job_ids(store: ObjectStore) -> set[str]:
    return {key.split("/")[1] for key in store.list("jobs/")}


def one(ids: set[str]) -> str | None:
    return next(iter(ids)) if len(ids) == 1 else None


def test_redis_restart_without_persistence_ends_the_waits_with_an_error(
    volatile_redis: RedisServer, tmp_path: Path
) -> None:
    settings = settings_for(volatile_redis, tmp_path)
    store = open_store(settings)
    with handler_configured(settings):
        run_volatile(volatile_redis, settings, store, tmp_path)


@contextlib.contextmanager
def handler_configured(settings: Settings) -> Iterator[None]:
    """The in-process handler on these settings, and afterwards on whatever it had before."""
    previous = runpod_handler._config
    runpod_handler.configure(settings, post_updates=False)
    try:
        yield
    finally:
        runpod_handler._config = previous


def run_volatile(volatile_redis: RedisServer, settings: Settings, store: ObjectStore, tmp_path: Path) -> None:
    with cluster(settings, tmp_path, gpu=1, cpu=1, synth_seconds=0.5) as running, ThreadPoolExecutor(1) as pool:
        # The CLI's job first; the handler's queues behind it (chunks run in order): both are mid-job.
        cli_started = time.monotonic()
        cli = start_cli(settings, paragraphs(CHUNKS, "cli"), tmp_path / "cli.log")
        cli_job = str(wait_until(lambda: one(job_ids(store)), 30, "the CLI's job to start"))
        wait_until(lambda: chunks_done(store, cli_job) >= 1, 60, "a chunk of the CLI's job to finish")
        (fake,) = running.fakes
        fake.configure(hold=True)  # no chunk ends until Redis has restarted: both jobs stay mid-way
        handler = pool.submit(run_handler, settings, paragraphs(CHUNKS, "handler"))
        handler_job = str(wait_until(lambda: one(job_ids(store) - {cli_job}), 30, "the handler's job to start"))
        staged = JobStore(store, handler_job)
        wait_until(lambda: staged.state() is not JobState.PENDING, 30, "the handler's job to be staged")
        volatile_redis.restart()  # no AOF, no RDB: queues, unacked messages, chord counters and results are gone
        assert chunks_done(store, cli_job) < CHUNKS and chunks_done(store, handler_job) < CHUNKS
        fake.configure(hold=False)  # the chunk that was running ends; nothing follows it

        out, handler_seconds = handler.result(DEADLINE + 30)
        cli.wait(DEADLINE + 30)
        cli_seconds = time.monotonic() - cli_started

    cli_output = (tmp_path / "cli.log").read_text()
    print(f"handler after {handler_seconds:.1f} s: {out}\nCLI (exit {cli.returncode}) after {cli_seconds:.1f} s: "
          f"{cli_output[-500:]}")
    # Both see the job vanish from the backend and stop moving: each names its job as lost,
    # before its deadline (at the deadline each would say it did not finish within it instead;
    # their wall-clock times are printed, not bounded: process start-up on a loaded machine varies).
    assert set(out) == {"error"} and f"job {handler_job} was lost" in out["error"], out
    assert cli.returncode == 1 and f"narrator: job {cli_job} was lost" in cli_output, cli_output
