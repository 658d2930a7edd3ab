"""One logging set-up for every entry point (narrator/ops/logs.py), told which entry point it serves."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from narrator.ops.logs import QUIET, JsonFormatter, setup_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in quiet.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.parametrize(
    ("mode", "verbose", "level"),
    [("cli", False, logging.WARNING), ("cli", True, logging.INFO), ("runpod", False, logging.INFO),
     ("worker", False, logging.INFO)],
)
def test_each_entry_point_logs_at_its_level(mode: str, verbose: bool, level: int) -> None:
    setup_logging(mode, verbose=verbose)  # type: ignore[arg-type]
    root = logging.getLogger()
    assert root.level == level and len(root.handlers) == 1


def test_loggers_that_print_secrets_or_task_arguments_are_quiet_everywhere() -> None:
    for mode in ("cli", "runpod", "worker"):
        setup_logging(mode, verbose=True, json_logs=True)  # type: ignore[arg-type]
        assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
        for name in ("celery.app.trace", "httpx", "botocore"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, (mode, name)


def test_a_pool_process_writes_to_the_real_stderr() -> None:
    setup_logging("worker")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.__stderr__
