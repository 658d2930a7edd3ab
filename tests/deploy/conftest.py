from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def fresh_broker_connections() -> Iterator[None]:
    """The Celery app keeps its producer pool when configure() changes the broker URL: a test
    on another broker drops it before (so its jobs go there) and after (so later ones don't)."""
    _drop_producer_pool()
    yield
    _drop_producer_pool()


def _drop_producer_pool() -> None:
    from narrator.tasks.app import app

    # What Celery itself does after a fork (Celery._after_fork); app.close() keeps the producer pool.
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
