"""Load: 500 jobs of 4 chunks through 4 GPU workers (4 fake ComfyUI processes) and 2 CPU workers.

None may be lost or run twice; the figures (jobs/s, p50/p99 latency, every worker's memory
at the start and the end) are printed (``pytest -s``) and written to ``load-figures.txt``
in the test's folder. The scenario is ``bench.bench_load``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_load import CHUNKS, JOBS, run_load

pytestmark = pytest.mark.integration

RSS_GROWTH_LIMIT = 60 * 2**20


@pytest.mark.timeout(600)
def test_five_hundred_jobs_none_lost_none_twice_memory_flat(tmp_path: Path) -> None:
    # run_load fails on a lost, failed or duplicated job, a cache hit, or a message left in the broker.
    report = run_load(tmp_path, JOBS, deadline=420)

    figures = f"{JOBS} jobs x {CHUNKS} chunks, {report.window} in flight\n{report.text()}\n"
    (tmp_path / "load-figures.txt").write_text(figures)
    print(f"\n{figures}")
    assert report.prompts == JOBS * CHUNKS and report.cache_hits == 0
    assert len(report.latencies) == JOBS
    assert report.percentile(50) <= report.percentile(99) < report.seconds
    grown = {name: report.rss_end[name] - report.rss_start[name] for name in report.rss_start}
    assert set(grown) == {"gpu0", "gpu1", "gpu2", "gpu3", "cpu0", "cpu1"}
    assert all(growth < RSS_GROWTH_LIMIT for growth in grown.values()), {k: v / 2**20 for k, v in grown.items()}
