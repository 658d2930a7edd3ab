"""The queue names are defined once (narrator/tasks/names.py); the start scripts, which cannot import
them, keep them as literals, and this checks that they match."""

from __future__ import annotations

import re
from pathlib import Path

from narrator.cli import build_parser
from narrator.settings import Settings
from narrator.tasks.app import celery_config
from narrator.tasks.names import CHUNK_TASK, CPU_QUEUE, GPU_QUEUE, QUEUES

ROOT = Path(__file__).resolve().parents[2]


def queues_in(script: str) -> list[str]:
    """Every queue a start script hands ``celery worker`` (``--queues X`` or its ``${WORKER_QUEUES:-X}`` default)."""
    text = (ROOT / "docker" / script).read_text()
    given = re.finditer(r'--queues "?(?:\$\{WORKER_QUEUES:-([^}]+)\}|([\w.]+))', text)
    return [m.group(1) or m.group(2) for m in given]


def test_start_scripts_consume_the_queues_the_app_routes_to() -> None:
    assert queues_in("start-cpu.sh") == [CPU_QUEUE]
    assert queues_in("start-gpu.sh") == [GPU_QUEUE]
    assert queues_in("start-runpod.sh") == [CPU_QUEUE]  # its GPU worker is start-gpu.sh's


def test_the_app_and_the_worker_command_use_the_same_names() -> None:
    conf = celery_config(Settings())
    assert {q.name for q in conf["task_queues"]} == {CPU_QUEUE, GPU_QUEUE} == set(QUEUES["all"])
    assert conf["task_default_queue"] == CPU_QUEUE and conf["task_routes"][CHUNK_TASK] == {"queue": GPU_QUEUE}
    assert QUEUES["cpu"] == (CPU_QUEUE,) and QUEUES["gpu"] == (GPU_QUEUE,)
    for choice in QUEUES:  # every `narrator worker --queues` choice names queues
        assert build_parser().parse_args(["worker", "--queues", choice]).queues == choice
