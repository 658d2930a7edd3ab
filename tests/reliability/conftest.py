"""Fixtures for the bad-input, security and S3-fault tests: broker state, workers with chosen log levels.

Names are prefixed with what they serve so they cannot clash with the chaos and
load tests' helpers in this folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from narrator.settings import Settings
from narrator.tasks.names import redis_list_keys
from tests.support.procs import ROOT, Worker, settings_env, wait_until

QUEUES = ("narrator.cpu", "narrator.gpu")


@dataclass(frozen=True)
class BrokerState:
    """What a broker holds that a queued job would change: its keys and its queue lengths."""

    keys: frozenset[str]
    queued: dict[str, int]


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue``, in all its priority lists."""
    return sum(int(client.llen(key)) for key in redis_list_keys(queue))


def broker_state(url: str) -> BrokerState:
    client = redis.Redis.from_url(url)
    keys = frozenset(k.decode() for k in client.scan_iter(count=1000))
    return BrokerState(keys, {q: queue_length(client, q) for q in QUEUES})


def redis_dump(url: str) -> str:
    """Every key and value the server holds, as text, for grepping."""
    client = redis.Redis.from_url(url)
    out: list[str] = []
    for raw in client.scan_iter(count=1000):
        kind = client.type(raw)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "string":
            value: object = client.get(raw)
        elif kind == "hash":
            value = client.hgetall(raw)
        elif kind == "list":
            value = client.lrange(raw, 0, -1)
        elif kind == "set":
            value = client.smembers(raw)
        elif kind == "zset":
            value = client.zrange(raw, 0, -1, withscores=True)
        else:
            value = f"<{kind}>"
        out.append(f"{raw!r} {value!r}")
    return "\n".join(out)


@dataclass
class Workers:
    """``celery worker`` subprocesses with an explicit environment and log level."""

    folder: Path
    started: list[Worker] = field(default_factory=list)

    def start(
        self,
        settings: Settings,
        *,
        queues: str = ",".join(QUEUES),
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        loglevel: str = "INFO",
        name: str | None = None,
    ) -> Worker:
        name = name or f"rel{len(self.started)}-{uuid.uuid4().hex[:6]}"
        full_env = {**os.environ, **settings_env(settings), **(env or {}), "PYTHONPATH": str(ROOT)}
        log = self.folder / f"{name}.log"
        args = [
            sys.executable, "-m", "celery", "-A", "narrator.tasks.worker", "worker", "-Q", queues,
            "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", loglevel, "--without-gossip",
            "--without-mingle",
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(name, queues, proc, log)
        self.started.append(worker)
        wait_until(lambda: _ready(worker), 60, f"worker {name} to be ready", 0.1)
        return worker

    def logs(self) -> str:
        return "\n".join(f"=== {w.name}\n{w.logs()}" for w in self.started)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
        self.started.clear()


def _ready(worker: Worker) -> bool:
    if worker.proc.poll() is not None:
        raise AssertionError(f"worker {worker.name} exited:\n{worker.logs()[-4000:]}")
    return " ready." in worker.logs()


@pytest.fixture(scope="module")
def module_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    workers = Workers(tmp_path_factory.mktemp("workers"))
    yield workers
    workers.stop_all()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


@dataclass
class PasswordRedis:
    """A redis-server that requires a password (its URL carries it, as a deployment's would)."""

    port: int
    folder: Path
    password: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "",
                "--appendonly", "no", "--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        wait_until(lambda: _pings(client), 10, "redis-server (with a password) to answer PING")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
