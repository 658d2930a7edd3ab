"""Queue order on the Redis broker: jobs first come, first served, and a retry next in line.

Two GPU workers, each on a fake ComfyUI whose prompt takes CHUNK_SECONDS.

* ``order``: JOBS jobs of CHUNKS chunks submitted together. Each job's last chunk ends at a time
  set against the first-come-first-served ideal: with W workers and every chunk in submission
  order, job i's last chunk ends ceil(chunks of jobs 1..i / W) chunk times after the first chunk
  began. The chunk time is the cluster's measured pace (a worker's time per chunk, its overhead
  between chunks included), so the ratio measures order, not speed. Target: every job within 1.15x.
* ``retry``: one job of BACKLOG chunks; a ComfyUI restart loses a running prompt, and its chunk
  is retried after its countdown (tasks/retry.py). Its wait is the time from the countdown's end
  (the worker's log line saying the task runs again, plus the countdown) to the retry's prompt
  starting. Target: under two chunk times, with the backlog still queued.

Run: ``python -m bench bench_order``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.harness import cluster
from narrator import jobs
from narrator.jobs import JobHandle
from narrator.settings import Settings
from tests.reliability.chaos_support import (
    paragraphs,
    posted,
    prompt_texts,
    request,
    restarted,
    wait_mid_chunk,
)
from tests.support.comfy import FakeProcess
from tests.support.procs import wait_until

Row = tuple[str, float | None, str, float | None, float | None]

CHUNK_SECONDS = 0.5
WORKERS = 2
JOBS = 6
CHUNKS = 8
BACKLOG = 40
DOWN_SECONDS = 0.5
#: A worker's plain log line saying a task runs again: its timestamp and the countdown.
RETRY_LOG = re.compile(r"^(\S+Z) WARNING .*task will run again.*?\bin=([0-9.]+)", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    text: str
    started: float
    finished: float


def prompts(fakes: Sequence[FakeProcess]) -> list[Prompt]:
    """Every prompt the fakes ran, with its wall-clock start and end."""
    out: list[Prompt] = []
    for fake in fakes:
        stats: dict[str, Any] = fake.stats()
        ids = list(stats["posted_wall"])
        texts = [(prompt_texts([p]) or [""])[0] for p in stats["prompts"]]  # "": a prompt with no TTS node
        for pid, text in zip(ids, texts, strict=True):
            if pid in stats["finished_wall"] and pid in stats["started_wall"]:
                out.append(Prompt(text, stats["started_wall"][pid], stats["finished_wall"][pid]))
    return sorted(out, key=lambda p: p.started)


def fcfs_ideal(chunks_per_job: Sequence[int], workers: int, chunk_seconds: float) -> list[float]:
    """When each job's last chunk ends, chunks served strictly in submission order on ``workers``."""
    ideal, total = [], 0
    for n in chunks_per_job:
        total += n
        ideal.append(math.ceil(total / workers) * chunk_seconds)
    return ideal


def texts_of(handle: JobHandle) -> list[str]:
    return [c.text for c in handle.job_store.manifest().chunks]


def wait_all(handles: Sequence[JobHandle], timeout: float) -> None:
    for handle in handles:
        handle.wait(timeout=timeout)


def order_figures(settings: Settings, fakes: Sequence[FakeProcess]) -> list[Row]:
    handles = [jobs.submit(request(paragraphs(CHUNKS, f"order{j}")), settings) for j in range(JOBS)]
    wait_all(handles, timeout=300)
    job_texts = [set(texts_of(h)) for h in handles]
    mine = [p for p in prompts(fakes) if any(p.text in t for t in job_texts)]
    chunk_seconds = sum(p.finished - p.started for p in mine) / len(mine)
    began = min(p.started for p in mine)
    # The cluster's measured pace, each worker's chunk time and its own overhead between chunks
    # included: the ideal is then about order alone, whatever this machine's speed.
    service = (max(p.finished for p in mine) - began) * WORKERS / len(mine)
    ideal = fcfs_ideal([CHUNKS] * JOBS, WORKERS, service)
    rows: list[Row] = [
        ("order chunk time at ComfyUI (measured)", chunk_seconds, "s", CHUNK_SECONDS, None),
        ("order chunk time per worker, all in (measured)", service, "s", chunk_seconds, service / chunk_seconds),
    ]
    worst = 0.0
    for j, texts in enumerate(job_texts):
        done = max(p.finished for p in mine if p.text in texts) - began
        ratio = done / ideal[j]
        worst = max(worst, ratio)
        rows.append((f"order job {j + 1} of {JOBS} last chunk", done, "s", ideal[j], ratio))
    rows.append(("order worst job vs FCFS ideal (target 1.15)", worst, "x", None, None))
    return rows


def retry_figures(settings: Settings, fakes: Sequence[FakeProcess], logs: Any) -> list[Row]:
    victim = fakes[0]
    victim.configure(hold=True)
    before = posted(victim)  # the warm-up's
    handle = jobs.submit(request(paragraphs(BACKLOG, "backlog")), settings)
    lost = wait_mid_chunk(victim, after=before)
    httpx.post(f"{victim.url}/_fake/restart", json={"down_seconds": DOWN_SECONDS}, timeout=5).raise_for_status()
    wait_until(lambda: restarted(victim), 30, "the fake to come back")
    victim.configure(hold=False)
    handle.wait(timeout=300)

    failed_at, countdown = RETRY_LOG.findall(logs())[-1]
    due = _wall(failed_at) + float(countdown)
    ran = [p for p in prompts(fakes) if p.text in set(texts_of(handle))]
    retry = [p for p in ran if p.text == lost][-1]
    chunk_seconds = sum(p.finished - p.started for p in ran) / len(ran)
    behind = sum(1 for p in ran if p.started > retry.started)
    wait = max(retry.started - due, 0.0)
    return [
        ("retry countdown (tasks/retry.py)", float(countdown), "s", None, None),
        (f"retry wait once due, {BACKLOG}-chunk backlog", wait, "s", 2 * chunk_seconds, wait / (2 * chunk_seconds)),
        ("retry: chunks of the backlog run after it", float(behind), "chunks", float(BACKLOG), None),
    ]


def _wall(stamp: str) -> float:
    """A log line's timestamp (``2026-11-29T11:57:19.554Z``) as seconds since the epoch."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def run() -> list[Row]:
    with cluster(gpu=WORKERS, cpu=1, synth_seconds=CHUNK_SECONDS) as c:
        rows = order_figures(c.settings, c.fakes)
    with cluster(gpu=WORKERS, cpu=1, synth_seconds=CHUNK_SECONDS) as c:
        rows += retry_figures(c.settings, c.fakes, lambda: "\n".join(w.logs() for w in c.pool.workers))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
