"""A real Flower process (``celery flower``) on a free loopback port, with basic auth."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from narrator.settings import Settings
from tests.support.procs import ROOT, free_port, settings_env, stop_group, wait_until

USER, PASSWORD = "ops", "s3cret-flower"


@dataclass
class Flower:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    user: str = USER
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive_workers(self) -> dict[str, bool]:
        """Workers Flower has heard from through Celery events (so events are flowing)."""
        answer = httpx.get(f"{self.url}/api/workers", params={"status": "true"}, auth=self.auth, timeout=5)
        answer.raise_for_status()
        return {name: bool(alive) for name, alive in answer.json().items()}

    def stop(self) -> None:
        stop_group(self.proc)


def start_flower(settings: Settings, folder: Path) -> Flower:
    """``celery -A narrator.tasks.worker flower`` as the compose service runs it; credentials by env."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(ROOT)}
    # Flower reads every option from FLOWER_<OPTION>: the password stays off the command line.
    env["FLOWER_BASIC_AUTH"] = f"{USER}:{PASSWORD}"
    log = folder / "flower.log"
    args = [sys.executable, "-m", "celery", "-A", "narrator.tasks.worker", "flower",
            "--address=127.0.0.1", f"--port={port}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    flower = Flower(port, proc, log)
    wait_until(lambda: _answers(flower), 60, f"Flower to answer:\n{flower.logs()}", 0.2)
    return flower


def _answers(flower: Flower) -> bool:
    if flower.proc.poll() is not None:
        raise AssertionError(f"Flower exited:\n{flower.logs()}")
    try:
        return httpx.get(f"{flower.url}/healthcheck", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def flower_process(settings: Settings, folder: Path) -> Iterator[Flower]:
    flower = start_flower(settings, folder)
    try:
        yield flower
    finally:
        flower.stop()
