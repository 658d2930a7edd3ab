"""The RunPod handler's overhead on top of the chain, for a one-chunk job, in-process.

Each round times the same request twice, alternating: ``jobs.submit(...).wait()``
(the chain alone) and ``handler(job)`` (input split and validation, submit, follow,
inline audio, output). The job is the same every time, so after the first round its
chunk comes from the cache and the chain's own time is small and steady; the
difference of the medians is what the handler adds. Target: at most 50 ms.

``JobHandle.wait`` polls storage every 0.2 s, so both timings are rounded up to a
poll and the difference can hide work done between polls. The last row therefore
also times the handler's own work directly: its total minus the time spent inside
``jobs.submit`` and ``JobHandle.wait`` (wrapped here with timers).

Run: python -m bench.bench_handler
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

Row = tuple[str, float, str, float | None, float | None]

ROUNDS = 10
TARGET_MS = 50.0
REQUEST = {"text": "The handler adds very little to a job."}


def run() -> list[Row]:
    from narrator import jobs, runpod_handler
    from narrator.settings import Settings

    inside: list[float] = []
    original_submit, original_wait = jobs.submit, jobs.JobHandle.wait

    def timed_submit(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_submit(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - started)

    def timed_wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_wait(self, *args, **kwargs)
        finally:
            inside.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="narrator-bench-handler-") as tmp:
        settings = Settings(storage_url=Path(tmp).as_uri(), job_timeout=120)
        runpod_handler.configure(settings, post_updates=False)
        loop = asyncio.new_event_loop()

        def direct() -> float:
            started = time.perf_counter()
            jobs.submit(dict(REQUEST), settings).wait(60)
            return time.perf_counter() - started

        def handler() -> tuple[float, float]:
            inside.clear()
            jobs.submit, jobs.JobHandle.wait = timed_submit, timed_wait  # type: ignore[method-assign]
            try:
                started = time.perf_counter()
                out = loop.run_until_complete(runpod_handler.async_handler({"id": "bench", "input": dict(REQUEST)}))
                elapsed = time.perf_counter() - started
            finally:
                jobs.submit, jobs.JobHandle.wait = original_submit, original_wait  # type: ignore[method-assign]
            if not out.get("success") or not out.get("audio_b64"):
                raise RuntimeError(f"handler failed: {out}")
            return elapsed, elapsed - sum(inside)

        try:
            direct(), handler()  # load the model, fill the chunk cache
            chain, full, own = [], [], []
            for _ in range(ROUNDS):
                chain.append(direct())
                total, mine = handler()
                full.append(total)
                own.append(mine)
        finally:
            loop.close()
    chain_ms = statistics.median(chain) * 1000
    full_ms = statistics.median(full) * 1000
    overhead = full_ms - chain_ms
    own_ms = statistics.median(own) * 1000
    return [
        ("runpod: chain alone, one chunk (median)", chain_ms, "ms", None, None),
        ("runpod: handler, one chunk (median)", full_ms, "ms", None, None),
        ("runpod: handler overhead (median)", overhead, "ms", TARGET_MS, overhead / TARGET_MS),
        ("runpod: handler own work, outside submit/wait", own_ms, "ms", TARGET_MS, own_ms / TARGET_MS),
    ]


if __name__ == "__main__":
    for name, value, unit, baseline, ratio in run():
        target = baseline is not None and ratio is not None
        extra = f"  (target {baseline:g} {unit}, ratio {ratio:.2f})" if target else ""
        print(f"{name:<45} {value:10.1f} {unit}{extra}")
