"""The order fan-outs publish in (tasks/fanout_order.py), on a real Redis; time and waiting injected."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import redis

from narrator.tasks.fanout_order import STAGED, SUBMITTED, FanoutOrder
from tests.support.procs import RedisServer, free_port


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    redis_server.flush()
    return redis.Redis.from_url(redis_server.url)


def now() -> float:
    """A clock at which the scores the tests use are recent."""
    return 100.0


def never_sleeps(seconds: float) -> None:
    raise AssertionError("waited although no earlier job was in the way")


def ticking(step: float = 1.0) -> Callable[[], float]:
    """A monotonic clock that advances ``step`` seconds each time it is read."""
    ticks = itertools.count(0.0, step)
    return lambda: next(ticks)


def order_of(client: redis.Redis) -> tuple[list[bytes], list[bytes]]:
    return client.zrange(SUBMITTED, 0, -1), client.zrange(STAGED, 0, -1)


def test_the_first_submitted_goes_at_once_and_a_place_taken_stands(client: redis.Redis) -> None:
    order = FanoutOrder(client, clock=now, sleep=never_sleeps)
    order.enter("b", 20.0)
    order.enter("a", 10.0)
    order.enter("a", 30.0)
    order.staged("a", 40.0)  # staged: in the place it took at submission
    assert client.zscore(SUBMITTED, "a") == 10.0 == client.zscore(STAGED, "a")
    assert order.wait_turn("a") == 0
    assert order.wait_turn("unknown") == 0  # a job in no order waits for no one


def test_a_later_job_waits_until_the_earlier_staged_one_has_published(client: redis.Redis) -> None:
    waits: list[float] = []

    def earlier_publishes(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            order.leave("early")

    order = FanoutOrder(client, clock=now, sleep=earlier_publishes)
    for job, at in (("early", 1.0), ("late", 2.0)):
        order.enter(job, at)
        order.staged(job, 50.0)
    assert order.wait_turn("late") == 0
    assert len(waits) == 3 and order_of(client) == ([b"late"], [b"late"])


def test_an_earlier_job_still_staging_gets_a_grace_then_keeps_its_place(client: redis.Redis) -> None:
    order = FanoutOrder(client, clock=now, grace_seconds=3.0, monotonic=ticking(), sleep=lambda s: None)
    order.enter("slow-voice", 1.0)  # submitted first, still fetching its voice
    order.enter("late", 2.0)
    order.staged("late", 50.0)
    assert order.wait_turn("late") == 0
    assert client.zscore(SUBMITTED, "slow-voice") == 1.0, "it keeps its place ahead of later jobs"


def test_a_staged_job_that_never_publishes_is_dropped_at_the_deadline(client: redis.Redis) -> None:
    order = FanoutOrder(client, clock=now, wait_seconds=5.0, monotonic=ticking(), sleep=lambda s: None)
    for i, job in enumerate(["died", "stuck", "late", "later"]):
        order.enter(job, float(i))
        order.staged(job, 50.0)
    assert order.wait_turn("late") == 2
    assert order_of(client) == ([b"late", b"later"], [b"late", b"later"])


def test_entries_older_than_stale_seconds_are_dropped(client: redis.Redis) -> None:
    order = FanoutOrder(client, stale_seconds=100.0, clock=lambda: 1000.0, sleep=never_sleeps)
    order.staged("forgotten", 850.0)  # a producer that entered no place: staged at its staging time
    order.staged("now", 990.0)
    assert order.wait_turn("now") == 0
    assert order_of(client) == ([], [b"now"])


def test_a_broker_that_does_not_answer_skips_the_order() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=1, socket_timeout=1)
    order = FanoutOrder(dead, sleep=never_sleeps)
    order.enter("a", 1.0)
    order.staged("a", 1.0)
    order.leave("a")
    assert order.wait_turn("a") == 0
