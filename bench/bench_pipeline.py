"""The pipeline on GPU workers driving (fake) ComfyUI servers, through a real Redis.

1. 64 chunks, fake synthesis 0.5 s each, 4 GPU workers: the ideal wall time is 8 s;
   report the wall time, its ratio to the ideal (target <= 1.05) and the per-chunk
   overhead (a GPU's idle time between one prompt finishing and the next finishing,
   beyond the synthesis itself). Each fake prompt lasts 0.5 s all in (its measured
   median is printed too). Run twice: GPU workers with one slot (the default: a
   GPU waits for its worker between chunks) and with two (the next prompt waits in
   ComfyUI's queue, so the GPU does not).
2. 200 one-chunk jobs submitted from ``narrator.submit`` in a loop, 2 CPU + 2 GPU
   workers: submission rate, and the time until all are complete.

Run: python -m bench.bench_pipeline
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any

from bench.harness import cluster

Row = tuple[str, float, str, float | None, float | None]
SYNTH = 0.5
SENTENCE = "The mill wheel turned slowly in the dark water, and the miller counted every turn of it."


def paragraphs(n: int, tag: str) -> str:
    return "\n\n".join(f"{tag}, part {i}. {SENTENCE}" for i in range(n))


def fan_out(gpu_concurrency: int = 1) -> list[Row]:
    """``gpu_concurrency`` 2 keeps a second prompt queued on each ComfyUI while the first is stored."""
    from narrator import jobs

    with cluster(gpu=4, cpu=1, synth_seconds=SYNTH, gpu_concurrency=gpu_concurrency) as c:
        # One job first, so the workers' engines are connected and warm.
        jobs.submit({"text": "Warm up the workers, please, before we start."}, c.settings).wait(timeout=120)
        before = {fake.url: len(fake.stats()["finished_wall"]) for fake in c.fakes}
        started = time.perf_counter()
        submitted = time.time()
        handle = jobs.submit({"text": paragraphs(64, f"Run {int(submitted)}")}, c.settings)
        result = handle.wait(timeout=300)
        wall = time.perf_counter() - started
        gaps: list[float] = []
        finishes: list[float] = []
        runs: list[float] = []
        for fake in c.fakes:
            stats = fake.stats()
            finished = sorted(stats["finished_wall"].values())[before[fake.url] :]
            finishes += finished
            gaps += [b - a - SYNTH for a, b in itertools.pairwise(finished)]
            runs += [end - stats["started_wall"][p] for p, end in stats["finished_wall"].items() if end > submitted]
    ideal = result.chunks * SYNTH / 4
    # From the job's submission to its last chunk done: the fan-out, without the final join.
    fan = max(finishes) - submitted
    rows: list[Row] = [
        (f"fan-out: {result.chunks} chunks x {SYNTH} s, 4 GPU workers, to last chunk", fan, "s", ideal, fan / ideal),
        ("fan-out: efficiency (ideal / time to last chunk)", ideal / fan, "", None, None),
        (f"fan-out: whole job incl. join of {result.duration_seconds:.0f} s audio", wall, "s", ideal, wall / ideal),
        ("fan-out: per-chunk overhead, median", statistics.median(gaps) * 1000, "ms", None, None),
        ("fan-out: one fake prompt, start to executing null, median", statistics.median(runs), "s", None, None),
    ]
    tag = f"fan-out, {gpu_concurrency} slot{'s' if gpu_concurrency > 1 else ''}/GPU:"
    return [(name.replace("fan-out:", tag), value, unit, base, ratio) for name, value, unit, base, ratio in rows]


def many_jobs(n: int = 200) -> list[Row]:
    from narrator import jobs

    with cluster(gpu=2, cpu=2, synth_seconds=0.0) as c:
        jobs.submit({"text": "Warm up the workers, please, before we start."}, c.settings).wait(timeout=120)
        started = time.perf_counter()
        handles: list[Any] = [
            jobs.submit({"text": f"Job number {i} of the batch, stamped {started}."}, c.settings) for i in range(n)
        ]
        submitted = time.perf_counter() - started
        results = [h.wait(timeout=600) for h in handles]
        done = time.perf_counter() - started
    assert all(r.success for r in results)
    return [
        (f"submit(): {n} jobs, submission rate", n / submitted, "jobs/s", None, None),
        (f"submit(): {n} jobs on 2 CPU + 2 GPU workers, all done", done, "s", None, None),
        ("submit(): throughput", n / done, "jobs/s", None, None),
    ]


def run() -> list[Row]:
    return fan_out() + fan_out(gpu_concurrency=2) + many_jobs()


if __name__ == "__main__":
    for row in run():
        print(row)
