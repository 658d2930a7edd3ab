"""What each task start and end does to the worker metrics: a table of cases."""

from __future__ import annotations

import pytest

from narrator.settings import Settings
from narrator.tasks.metrics import METRICS, TaskEvent, Update, metrics_address, updates

CHUNK = "narrator.synthesize_chunk"
UPLOAD = "narrator.upload"
UPLOAD_RESULT = {"duration_seconds": 12.5, "metrics": {"execution_time": 4.0}, "job_id": "a" * 32}


def runs(task: str, state: str) -> Update:
    return Update("narrator_task_runs", labels=(("task", task), ("state", state)))


def took(task: str, seconds: float) -> Update:
    return Update("narrator_task_seconds", seconds, (("task", task),))


CASES = [
    ("stage starts a job", TaskEvent("narrator.stage_input"), [Update("narrator_jobs_started")]),
    ("a chunk run starts", TaskEvent(CHUNK), [Update("narrator_chunks_started")]),
    ("other tasks start silently", TaskEvent("narrator.concatenate"), []),
    ("foreign tasks are ignored", TaskEvent("other.task", state="SUCCESS", seconds=1.0), []),
    (
        "a synthesized chunk",
        TaskEvent(CHUNK, "j", "SUCCESS", 2.0, {"index": 0, "seconds": 3.5, "cached": False}),
        [
            runs(CHUNK, "SUCCESS"), took(CHUNK, 2.0),
            Update("narrator_chunks_succeeded", labels=(("cached", "false"),)),
            Update("narrator_chunk_audio_seconds", 3.5, (("cached", "false"),)),
            Update("narrator_chunk_synthesis_seconds", 2.0),
        ],
    ),
    (
        "a cached chunk is not a synthesis time",
        TaskEvent(CHUNK, "j", "SUCCESS", 0.1, {"index": 1, "seconds": 3.0, "cached": True}),
        [
            runs(CHUNK, "SUCCESS"), took(CHUNK, 0.1),
            Update("narrator_chunks_succeeded", labels=(("cached", "true"),)),
            Update("narrator_chunk_audio_seconds", 3.0, (("cached", "true"),)),
        ],
    ),
    (
        "a chunk retry",
        TaskEvent(CHUNK, "j", "RETRY", 1.0),
        [runs(CHUNK, "RETRY"), took(CHUNK, 1.0), Update("narrator_chunks_retried")],
    ),
    (
        "a chunk failure fails the job",
        TaskEvent(CHUNK, "j", "FAILURE", 1.0, ValueError("x")),
        [
            runs(CHUNK, "FAILURE"), took(CHUNK, 1.0),
            Update("narrator_jobs_failed", labels=(("task", CHUNK),)), Update("narrator_chunks_failed"),
        ],
    ),
    (
        "a staging failure fails the job",
        TaskEvent("narrator.stage_input", "j", "FAILURE", None, ValueError("x")),
        [
            runs("narrator.stage_input", "FAILURE"),
            Update("narrator_jobs_failed", labels=(("task", "narrator.stage_input"),)),
        ],
    ),
    (
        "an upload finishes the job",
        TaskEvent(UPLOAD, "j", "SUCCESS", 0.5, UPLOAD_RESULT),
        [
            runs(UPLOAD, "SUCCESS"), took(UPLOAD, 0.5),
            Update("narrator_jobs_succeeded"),
            Update("narrator_audio_seconds", 12.5),
            Update("narrator_job_seconds", 4.0),
        ],
    ),
    (
        "an upload that was ignored (no job bound) finishes nothing",
        TaskEvent(UPLOAD, "", "IGNORED", 0.01, None),
        [runs(UPLOAD, "IGNORED"), took(UPLOAD, 0.01)],
    ),
    (
        "a replaced task ends IGNORED",
        TaskEvent("narrator.job", "j", "IGNORED", 0.2, None),
        [runs("narrator.job", "IGNORED"), took("narrator.job", 0.2)],
    ),
]


@pytest.mark.parametrize(("event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_updates(event: TaskEvent, expected: list[Update]) -> None:
    assert updates(event) == expected


def test_every_update_names_a_declared_metric_with_its_labels() -> None:
    for _, event, _ in CASES:
        for update in updates(event):
            _, _, labels, _ = METRICS[update.metric]
            assert tuple(name for name, _ in update.labels) == labels, update


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"NARRATOR_METRICS_PORT": "0"}, None),
        ({"NARRATOR_METRICS_PORT": "9808"}, ("127.0.0.1", 9808)),
        ({"NARRATOR_METRICS_PORT": "9808", "NARRATOR_METRICS_ADDR": "0.0.0.0"}, ("0.0.0.0", 9808)),
    ],
)
def test_metrics_address(env: dict[str, str], expected: tuple[str, int] | None) -> None:
    assert metrics_address(Settings.from_env(env)) == expected
