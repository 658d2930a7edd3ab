"""The expiry planner, from tables: which job folders and cache entries go, and in what order."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from narrator.ops.gc import Policy, plan_cache, plan_job, plan_jobs
from narrator.result import JobState
from narrator.storage.base import StoredObject

DAY = 86400.0
NOW = 1_000 * DAY
JOB = "a" * 32
OTHER = "b" * 32
WEEK = Policy(older_than=7 * DAY, unfinished_after=1 * DAY, floor=720)


def job(names_ages: Mapping[str, float], job_id: str = JOB) -> list[StoredObject]:
    """Objects of one job folder: name -> age in days."""
    return [StoredObject(f"jobs/{job_id}/{name}", 10, NOW - age * DAY) for name, age in names_ages.items()]


SUCCESS = {"manifest.json": 9, "staged/2": 9, "done/00000-1000-s": 9, "output.wav": 8, "result.json": 8}
FAILED = {"manifest.json": 9, "staged/2": 9, "error.json": 8}
CANCELLED = {"manifest.json": 9, "staged/2": 9, "error.json": 8, "cancelled": 8}
RUNNING = {"manifest.json": 9, "staged/2": 9, "done/00000-1000-s": 0.001}


@pytest.mark.parametrize(
    ("case", "objects", "policy", "expired", "state"),
    [
        ("ended 8 days ago, cutoff 7", SUCCESS, WEEK, True, JobState.SUCCESS),
        ("failed 8 days ago", FAILED, WEEK, True, JobState.FAILURE),
        ("cancelled 8 days ago", CANCELLED, WEEK, True, JobState.CANCELLED),
        ("ended 6 days ago", {**SUCCESS, "result.json": 6}, WEEK, False, None),
        ("newest object decides, not oldest", {**SUCCESS, "output.srt": 1}, WEEK, False, None),
        ("running: a chunk just finished", RUNNING, WEEK, False, None),
        ("not ended, idle 8 days: abandoned", {**RUNNING, "done/00000-1000-s": 8}, WEEK, True, JobState.SYNTHESIZING),
        ("only a request, idle 8 days", {"request.json": 8}, WEEK, True, JobState.PENDING),
        ("not ended, idle 2 days, cutoff 1 day, unfinished after 3",
         {**RUNNING, "done/00000-1000-s": 2}, Policy(DAY, 3 * DAY, 720), False, None),
        ("ended 2 days ago, cutoff 1 day, unfinished after 3",
         {**SUCCESS, "output.wav": 2, "result.json": 2}, Policy(DAY, 3 * DAY, 720), True, JobState.SUCCESS),
        ("unfinished_after never shortens the cutoff",
         {**RUNNING, "done/00000-1000-s": 5}, Policy(7 * DAY, 0, 720), False, None),
        ("the floor holds even with a zero cutoff", {**CANCELLED, "cancelled": 300 / DAY},
         Policy(0, 0, 720), False, None),
        ("past the floor with a zero cutoff", {**CANCELLED, "cancelled": 800 / DAY}, Policy(0, 0, 720), True,
         JobState.CANCELLED),
    ],
)
def test_plan_job(case: str, objects: dict[str, float], policy: Policy, expired: bool, state: JobState | None) -> None:
    item = plan_job(JOB, job(objects), NOW, policy)
    assert (item is not None) == expired, case
    if item is not None:
        assert item.state == state
        assert set(item.keys) == {f"jobs/{JOB}/{n}" for n in objects}
        assert item.bytes == 10 * len(objects)


def test_end_markers_are_deleted_last() -> None:
    item = plan_job(JOB, job(CANCELLED), NOW, WEEK)
    assert item is not None
    tail = [k.rsplit("/", 1)[-1] for k in item.keys[-2:]]
    assert sorted(tail) == ["cancelled", "error.json"]
    assert item.keys[0].endswith(("manifest.json", "staged/2"))


def test_plan_jobs_groups_a_listing_by_job_and_ignores_strangers() -> None:
    listing = sorted(
        job(SUCCESS) + job(RUNNING, OTHER)
        + [StoredObject("jobs/README", 1, 0.0), StoredObject("jobs/not-a-job/x", 1, 0.0)],
        key=lambda o: o.key,
    )
    items = list(plan_jobs(listing, NOW, WEEK))
    assert len(items) == 2  # two job folders; the strangers are not judged at all
    expired = [i for i in items if i is not None]
    assert [i.name for i in expired] == [JOB]


@pytest.mark.parametrize(
    ("age_days", "policy", "expired"),
    [
        (8, WEEK, True),
        (6, WEEK, False),
        (300 / DAY, Policy(0, 0, 720), False),
        (800 / DAY, Policy(0, 0, 720), True),
    ],
)
def test_plan_cache(age_days: float, policy: Policy, expired: bool) -> None:
    key = "cache/ab/" + "ab" * 32 + ".flac"
    items = list(plan_cache([StoredObject(key, 5, NOW - age_days * DAY)], NOW, policy))
    assert [i.name for i in items] == ([key] if expired else [])
