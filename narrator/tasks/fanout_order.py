"""Fan-outs in the order jobs were submitted, on a Redis broker.

A CPU worker runs as many fan-outs at once as it has processes, and each publishes its job's
chunks one message at a time: two jobs submitted together had their chunks interleaved in the
GPU queue, so they progressed together and the first submitted finished late (twice the
first-come-first-served time, bench/bench_order.py). So a job takes a place in the order,
scored by when it was submitted, from submission (or, for a producer that does not enter it,
from staging) until its chunks are published, and a fan-out waits for the jobs ahead of it:

* an earlier job that is staged is publishing (or about to): wait for it, up to
  ``wait_seconds`` (then it is dropped from the order: its worker died mid-fan-out);
* an earlier job still staging gets ``grace_seconds`` (jobs submitted together stage
  together, one a little later than the other); a staging that takes longer (a large
  voice to fetch) lets later jobs go first rather than leave a GPU idle.

Order is a courtesy, never a reason to fail or hang a job: every wait is bounded, entries older
than ``stale_seconds`` are dropped, and a broker error skips the wait.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SUBMITTED = "narrator:fanout:submitted"
STAGED = "narrator:fanout:staged"


@dataclass
class FanoutOrder:
    client: Any
    """A redis-py client of the broker."""
    wait_seconds: float = 30.0
    grace_seconds: float = 3.0
    stale_seconds: float = 3600.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = field(default=time.monotonic)

    def enter(self, job_id: str, submitted_at: float) -> None:
        """Take ``job_id``'s place in the order at submission; a place it already has stands."""
        self._safely("enter", lambda: self.client.zadd(SUBMITTED, {job_id: submitted_at}, nx=True))

    def staged(self, job_id: str, staged_at: float) -> None:
        """``job_id`` is staged and will fan out next, in its place (or at ``staged_at``, if it has none)."""

        def mark() -> None:
            place = self.client.zscore(SUBMITTED, job_id)
            self.client.zadd(STAGED, {job_id: staged_at if place is None else place}, nx=True)

        self._safely("staged", mark)

    def leave(self, job_id: str) -> None:
        """Give up the place: its chunks are published, or it ended."""
        self._safely("leave", lambda: (self.client.zrem(SUBMITTED, job_id), self.client.zrem(STAGED, job_id)))

    def wait_turn(self, job_id: str) -> int:
        """Return once no earlier job is to fan out before ``job_id`` (see the module); how many were dropped."""
        began = self.monotonic()
        while True:
            try:
                ahead_staged, ahead_staging = self._ahead(job_id)
                waited = self.monotonic() - began
                if ahead_staged and waited >= self.wait_seconds:
                    self.leave_all(ahead_staged)
                    log.warning("fan-out stopped waiting for earlier jobs", extra={
                        "job_id": job_id, "dropped": ahead_staged})
                    return len(ahead_staged)
                if not ahead_staged and (not ahead_staging or waited >= self.grace_seconds):
                    return 0
            except RedisError as exc:
                log.warning("fan-out order unavailable", extra={"job_id": job_id, "error": str(exc)})
                return 0
            self.sleep(0.01)

    @contextlib.contextmanager
    def turn(self, job_id: str) -> Iterator[None]:
        """Wait for ``job_id``'s turn to publish; leave the order once the body has published."""
        self.wait_turn(job_id)
        try:
            yield
        finally:
            self.leave(job_id)

    def leave_all(self, job_ids: list[str]) -> None:
        self.client.zrem(SUBMITTED, *job_ids)
        self.client.zrem(STAGED, *job_ids)

    def _ahead(self, job_id: str) -> tuple[list[str], list[str]]:
        """Earlier jobs that are staged, and earlier jobs still staging."""
        stale = self.clock() - self.stale_seconds
        self.client.zremrangebyscore(SUBMITTED, "-inf", stale)
        self.client.zremrangebyscore(STAGED, "-inf", stale)
        mine = self.client.zscore(STAGED, job_id)
        if mine is None:
            return [], []  # in no order (entered by no one, or dropped): no one to wait for
        staged = [_text(j) for j in self.client.zrangebyscore(STAGED, "-inf", f"({mine}")]
        submitted = [_text(j) for j in self.client.zrangebyscore(SUBMITTED, "-inf", f"({mine}")]
        return staged, [j for j in submitted if j not in set(staged)]

    def _safely(self, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except RedisError as exc:
            log.warning("fan-out order unavailable", extra={"step": what, "error": str(exc)})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
