"""When a waiter gives up early: a table of what it saw, and when."""

from __future__ import annotations

import pytest

from narrator.job.liveness import Liveness

# (events, expected lost at the end); events are (time, "state" | "progress" | "down", value)
CASES = [
    ("never started", [(0, "state", "PENDING"), (60, "state", "PENDING")], False),
    ("running", [(0, "state", "STARTED"), (5, "state", "PROGRESS"), (60, "state", "PROGRESS")], False),
    ("vanished, then still", [(0, "state", "STARTED"), (1, "progress", 1), (2, "state", "PENDING"),
                              (13, "state", "PENDING")], True),
    ("vanished, but progress moves", [(0, "state", "STARTED"), (2, "state", "PENDING"), (9, "progress", 2),
                                      (13, "state", "PENDING")], False),
    ("vanished stays vanished", [(0, "state", "STARTED"), (1, "state", "PENDING"), (2, "state", "PROGRESS"),
                                 (20, "state", "PROGRESS")], True),
]


@pytest.mark.parametrize(("events", "lost"), [(e, lost) for _, e, lost in CASES], ids=[c[0] for c in CASES])
def test_lost(events: list[tuple[float, str, object]], lost: bool) -> None:
    live = Liveness(lost_after=10)
    for now, kind, value in events:
        if kind == "state":
            live.saw_state(str(value), now)
        elif kind == "progress":
            live.saw_progress(value, now)
    assert live.lost(events[-1][0]) is lost


def test_backend_down_only_after_the_grace() -> None:
    live = Liveness(grace=30)
    assert not live.backend_failed(100)
    assert not live.backend_failed(120)
    live.saw_state("STARTED", 125)  # back: the clock starts again
    assert not live.backend_failed(126)
    assert live.backend_failed(157)
