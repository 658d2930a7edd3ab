"""Real processes for tests: a Redis server and Celery workers, on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from narrator.settings import PROJECT_WORKFLOWS as WORKFLOWS
from narrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def stop_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 15) -> None:
    """SIGTERM a process group started with ``start_new_session``; SIGKILL it after ``grace`` s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class RedisServer:
    port: int
    folder: Path
    appendonly: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (the README's test command installs it)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--protected-mode", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_until(lambda: _pings(client), 10, "redis-server to answer PING")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        redis.Redis(port=self.port).flushall()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    """Settings for a job through the real Redis (flushed) with file storage in this test's folder."""
    redis_server.flush()
    return Settings(broker_url=redis_server.url, storage_url=(tmp_path / "store").as_uri(), workflows_dir=WORKFLOWS,
                    verify="off")


@dataclass
class Worker:
    name: str
    queues: str
    proc: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(20)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class WorkerPool:
    """Starts ``celery worker`` subprocesses with the given settings as environment."""

    folder: Path
    workers: list[Worker] = field(default_factory=list)

    def start(
        self, settings: Settings, queues: str = "narrator.cpu,narrator.gpu", concurrency: int = 1,
        extra_env: dict[str, str] | None = None, name: str | None = None, wait: bool = True,
    ) -> Worker:
        """Start a worker; unless ``wait`` is false, return once it logs that it is ready."""
        name = name or f"w{len(self.workers)}-{uuid.uuid4().hex[:6]}"
        args = [
            sys.executable, "-m", "celery", "-A", "narrator.tasks.worker", "worker",
            "-Q", queues, "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ]
        return self._spawn(args, settings, name, queues, extra_env, wait)

    def start_command(
        self, settings: Settings, label: str, *options: str, extra_env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Worker:
        """``narrator worker OPTIONS``, as an operator runs it (its node name: :func:`node_name_of`)."""
        args = [sys.executable, "-m", "narrator.cli", "worker", *options]
        return self._spawn(args, settings, label, " ".join(options), extra_env, wait)

    def _spawn(
        self, args: list[str], settings: Settings, name: str, queues: str, extra_env: dict[str, str] | None,
        wait: bool,
    ) -> Worker:
        env = {**os.environ, **settings_env(settings), **(extra_env or {})}
        env["PYTHONPATH"] = str(ROOT)
        log = self.folder / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(name, queues, proc, log)
        self.workers.append(worker)
        if wait:
            wait_until(lambda: self._ready(worker), 60, f"worker {name} to be ready:\n{worker.logs()}", 0.2)
        return worker

    @staticmethod
    def _ready(worker: Worker) -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker {worker.name} exited:\n{worker.logs()}")
        return " ready." in worker.logs()

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def logs(self) -> str:
        return "\n".join(f"=== {w.name}\n{w.logs()[-4000:]}" for w in self.workers)


def node_name_of(worker: Worker) -> str:
    """The node name a worker's ready line (``<name> ready.``) gives; empty before it is ready."""
    found = re.search(r"(\S+@\S+) ready\.", worker.logs())
    return found.group(1) if found else ""


def settings_env(settings: Settings) -> dict[str, str]:
    env = {
        "NARRATOR_BROKER_URL": settings.broker_url,
        "NARRATOR_RESULT_BACKEND": settings.result_backend,
        "NARRATOR_STORAGE_URL": settings.storage_url,
        "NARRATOR_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "NARRATOR_COMFY_URL": settings.comfy_url,
        "NARRATOR_WORKFLOWS_DIR": str(settings.workflows_dir),
        "NARRATOR_DEFAULT_MODEL": settings.default_model,
        "NARRATOR_CHUNK_MAX_RETRIES": str(settings.chunk_max_retries),
        "NARRATOR_FETCH_ALLOW": ",".join(settings.fetch_allow),
        "NARRATOR_WARMUP_MODELS": ",".join(settings.warmup_models),
        "NARRATOR_RUNPOD_API_KEY": settings.runpod_api_key,
        "NARRATOR_RUNPOD_API_URL": settings.runpod_api_url,
        "NARRATOR_CHUNK_TIME_LIMIT": str(settings.chunk_time_limit),
        # The suite's default (tests/conftest.py): processes started with every NARRATOR_* stripped
        # would otherwise check the fake's vowels with each model's own default. A request still asks.
        "NARRATOR_VERIFY": settings.verify or "off",
    }
    return {k: v for k, v in env.items() if v}


@pytest.fixture
def worker_pool(tmp_path: Path) -> Iterator[WorkerPool]:
    pool = WorkerPool(tmp_path)
    yield pool
    pool.stop_all()
