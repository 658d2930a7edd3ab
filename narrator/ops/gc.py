"""Expire old jobs and cache entries from object storage (``narrator gc``).

A pure planner (:func:`plan`) decides from a listing (key, size, last modified) and a clock;
:func:`collect` lists, plans and deletes. A job's state comes from its markers by the one rule
(:class:`narrator.job.store.Markers`), so "ended" means what it means everywhere else.

Rules:

- A job that ended (SUCCESS, FAILURE, CANCELLED) expires once its newest object is older
  than ``older_than``.
- A job that has not ended may still be queued or running: it is left alone until its newest
  object is older than ``unfinished_after`` as well (an abandoned job: a crashed producer, a
  purged queue). A running job writes a marker per chunk, so it never looks that idle.
- Nothing whose newest object is younger than ``floor`` (the chunk time limit) is touched,
  whatever the cutoff: a failed or cancelled job's other chunks may still be finishing.
- A cache entry expires once it is older than ``older_than`` (it is written once; a job that
  needs it again synthesizes it again).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..job.store import CACHE_PREFIX, JOBS_PREFIX, Markers, is_job_id
from ..result import JobState
from ..storage import ObjectStore
from ..storage.base import StoredObject

log = logging.getLogger(__name__)

# Keys go to the store this many at a time (S3 deletes up to 1000 in one call).
_BATCH = 1000


@dataclass(frozen=True)
class Policy:
    older_than: float
    """Seconds: an ended job or a cache entry older than this expires."""
    unfinished_after: float
    """Seconds: a job that has not ended expires only when idle this long too."""
    floor: float = 0.0
    """Seconds: nothing newer than this is touched, whatever the other two say."""


@dataclass(frozen=True)
class Expired:
    """One unit of expiry: a job's whole folder, or one cache entry."""

    kind: str
    """``job`` or ``cache``."""
    name: str
    """The job id, or the cache key."""
    keys: tuple[str, ...]
    """In deletion order: a job's end markers last, so a run cut short leaves a job that still looks ended."""
    bytes: int
    state: JobState | None = None


@dataclass
class Report:
    jobs: dict[str, int] = field(default_factory=dict)
    """Expired jobs by state."""
    job_objects: int = 0
    job_bytes: int = 0
    cache_entries: int = 0
    cache_bytes: int = 0
    kept_jobs: int = 0
    """Jobs seen and kept (too new, or not ended and not idle long enough)."""

    def add(self, item: Expired) -> None:
        if item.kind == "job":
            state = item.state.value if item.state else "?"
            self.jobs[state] = self.jobs.get(state, 0) + 1
            self.job_objects += len(item.keys)
            self.job_bytes += item.bytes
        else:
            self.cache_entries += 1
            self.cache_bytes += item.bytes

    def to_json(self) -> dict[str, object]:
        return {
            "jobs": sum(self.jobs.values()),
            "jobs_by_state": dict(sorted(self.jobs.items())),
            "job_objects": self.job_objects,
            "job_bytes": self.job_bytes,
            "cache_entries": self.cache_entries,
            "cache_bytes": self.cache_bytes,
            "kept_jobs": self.kept_jobs,
        }


def plan_jobs(objects: Iterable[StoredObject], now: float, policy: Policy) -> Iterator[Expired | None]:
    """Each job folder in ``objects`` (keys under ``jobs/``, in key order): Expired, or None when kept."""
    for job_id, group in itertools.groupby(_job_objects(objects), key=lambda pair: pair[0]):
        yield plan_job(job_id, [obj for _, obj in group], now, policy)


def plan_job(job_id: str, objects: list[StoredObject], now: float, policy: Policy) -> Expired | None:
    prefix = f"{JOBS_PREFIX}{job_id}/"
    names = [obj.key[len(prefix) :] for obj in objects]
    state = Markers.from_names(names).state
    idle = now - max(obj.modified for obj in objects)
    wait = policy.older_than if state.final else max(policy.older_than, policy.unfinished_after)
    if idle <= max(wait, policy.floor):
        return None
    ordered = sorted(zip(names, objects, strict=True), key=lambda pair: _is_end_marker(pair[0]))
    return Expired(
        "job", job_id, tuple(obj.key for _, obj in ordered), sum(obj.size for obj in objects), state
    )


def plan_cache(objects: Iterable[StoredObject], now: float, policy: Policy) -> Iterator[Expired]:
    limit = max(policy.older_than, policy.floor)
    for obj in objects:
        if obj.key.startswith(CACHE_PREFIX) and now - obj.modified > limit:
            yield Expired("cache", obj.key, (obj.key,), obj.size)


def collect(store: ObjectStore, now: float, policy: Policy, *, dry_run: bool = False) -> Report:
    """List ``jobs/`` and ``cache/``, delete what :func:`plan_jobs` and :func:`plan_cache` expire."""
    report = Report()
    pending: list[str] = []
    for item in plan_jobs(store.list_objects(JOBS_PREFIX), now, policy):
        if item is None:
            report.kept_jobs += 1
            continue
        _expire(store, item, report, pending, dry_run)
    for item in plan_cache(store.list_objects(CACHE_PREFIX), now, policy):
        _expire(store, item, report, pending, dry_run)
    if pending:
        store.delete_many(pending)
    return report


def _expire(store: ObjectStore, item: Expired, report: Report, pending: list[str], dry_run: bool) -> None:
    report.add(item)
    log.info(
        "expire" if not dry_run else "would expire",
        extra={"kind": item.kind, "item": item.name, "objects": len(item.keys), "bytes": item.bytes,
               "state": item.state.value if item.state else None},
    )
    if dry_run:
        return
    pending.extend(item.keys)
    if len(pending) >= _BATCH:
        store.delete_many(pending)
        pending.clear()


def _job_objects(objects: Iterable[StoredObject]) -> Iterator[tuple[str, StoredObject]]:
    for obj in objects:
        parts = obj.key.split("/", 2)
        # Only folders named like a job: anything else under jobs/ is not ours to judge.
        if len(parts) == 3 and parts[0] + "/" == JOBS_PREFIX and is_job_id(parts[1]):
            yield parts[1], obj


def _is_end_marker(name: str) -> bool:
    return Markers.from_names([name]).state.final
