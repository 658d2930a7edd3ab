"""Names the broker, the workers and the producers share: queues, tasks, and a task's job id.

The one definition of each: the Celery app routes by them, ``narrator worker`` consumes
them, the metrics label by them. ``docker/start-*.sh`` keep the queue names as literals
(a shell script cannot import them); tests/deploy/test_static.py checks that they match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import JobNotFound
from ..job.store import normalise_job_id

CPU_QUEUE = "narrator.cpu"
GPU_QUEUE = "narrator.gpu"
#: ``narrator worker --queues`` choices.
QUEUES: dict[str, tuple[str, ...]] = {"cpu": (CPU_QUEUE,), "gpu": (GPU_QUEUE,), "all": (CPU_QUEUE, GPU_QUEUE)}

JOB_TASK = "narrator.job"
STAGE_TASK = "narrator.stage_input"
FANOUT_TASK = "narrator.synthesize"
CHUNK_TASK = "narrator.synthesize_chunk"
VERIFY_TASK = "narrator.verify_chunk"
CONCATENATE_TASK = "narrator.concatenate"
UPLOAD_TASK = "narrator.upload"

#: Message priorities on a Redis broker, where kombu keeps one list per step and always serves
#: the lowest step first (0 is the most urgent: Redis counts the other way from AMQP). Every
#: task is sent at NORMAL, so each queue is first come, first served and a job's chunks run
#: before those of jobs submitted after it; a retry is sent at RETRY, so it runs next rather
#: than behind every chunk queued since. Other brokers ignore them (SQS has no priorities).
RETRY_PRIORITY = 0
NORMAL_PRIORITY = 6
PRIORITY_STEPS = (RETRY_PRIORITY, NORMAL_PRIORITY)
#: kombu's separator between a queue's name and a priority step in its Redis list names.
REDIS_PRIORITY_SEP = "\x06\x16"


def redis_list_keys(queue: str) -> tuple[str, ...]:
    """The Redis lists a queue's messages wait in, one per priority step, most urgent first."""
    return tuple(f"{queue}{REDIS_PRIORITY_SEP}{step}" if step else queue for step in PRIORITY_STEPS)


def job_id_of(task_name: str, task_id: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> str:
    """The job a task run belongs to, from its arguments; empty when it names none.

    The entry task's id is its job's id (other producers may send it with dashes);
    every other pipeline task takes the job id as ``job_id`` or as its first argument.
    """
    if task_name == JOB_TASK:
        candidate: object = task_id
    elif kwargs and kwargs.get("job_id"):
        candidate = kwargs["job_id"]
    else:
        candidate = args[0] if args else ""
    if not isinstance(candidate, str) or not candidate:
        return ""
    try:
        return normalise_job_id(candidate)
    except JobNotFound:
        return ""
