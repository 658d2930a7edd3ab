"""One logging set-up for every entry point (narrator/ops/logs.py), told which entry point it serves;
what every line carries (its time) and what none does (task arguments, a cancel as an error)."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from celery.exceptions import ChordError, TaskRevokedError

from narrator.errors import EngineFailed, JobCancelled
from narrator.ops.logs import (
    QUIET,
    ExpectedFilter,
    FieldsFormatter,
    JsonFormatter,
    caused_by,
    setup_logging,
    utc_time,
    without_credentials,
)


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


TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _record(msg: str = "hello", level: int = logging.INFO, exc: BaseException | None = None,
            **extra: object) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("celery.worker.strategy", level, __file__, 1, msg, None, exc_info)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    ("created", "shown"),
    [(0.0, "1970-01-01T00:00:00.000Z"), (1.5, "1970-01-01T00:00:01.500Z"),
     (datetime(2026, 11, 29, 11, 47, 34, 123000, tzinfo=UTC).timestamp(), "2026-11-29T11:47:34.123Z"),
     (59.9996, "1970-01-01T00:01:00.000Z")],  # rounded, carried into the seconds
)
def test_times_are_utc_to_the_millisecond(created: float, shown: str) -> None:
    assert utc_time(created) == shown


def test_a_json_record_is_one_line_with_its_time_whatever_it_holds() -> None:
    try:
        raise ValueError("two\nlines")
    except ValueError as exc:
        record = _record("first\nsecond", logging.ERROR, exc, job_id="j1")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert TIME.match(parsed["time"]) and parsed["job_id"] == "j1" and "ValueError" in parsed["exc"]


@pytest.mark.parametrize(("mode", "timed"), [("cli", False), ("runpod", True), ("worker", True)])
def test_plain_lines_start_with_the_time_except_a_commands_own(mode: str, timed: bool) -> None:
    handler = setup_logging(mode)  # type: ignore[arg-type]
    assert handler.formatter is not None
    line = handler.formatter.format(_record(chunk=3))
    assert bool(TIME.match(line.split(" ", 1)[0])) is timed, line
    assert line.endswith("INFO celery.worker.strategy: hello chunk=3")


def test_every_line_of_a_plain_traceback_starts_with_the_time() -> None:
    handler = setup_logging("worker")
    assert handler.formatter is not None
    try:
        raise ValueError("a\nmulti-line error")
    except ValueError as exc:
        text = handler.formatter.format(_record("warning:\nsecond line", logging.ERROR, exc))
    lines = text.splitlines()
    assert len(lines) > 4 and "Traceback (most recent call last):" in text
    assert all(TIME.match(line.split(" ", 1)[0]) for line in lines), text


SECRET_TEXT = "the request's text, never in a log"


@pytest.mark.parametrize("formatter", [JsonFormatter(), FieldsFormatter()])
def test_celerys_records_show_no_task_arguments_or_results(formatter: logging.Formatter) -> None:
    data = {"id": "t1", "name": "narrator.job", "args": f"({SECRET_TEXT!r},)", "kwargs": {"request": SECRET_TEXT},
            "return_value": SECRET_TEXT, "traceback": SECRET_TEXT, "eta": None}
    line = formatter.format(_record("Task %(name)s received", data=data))
    assert SECRET_TEXT not in line
    assert "t1" in line and "narrator.job" in line


def _raised(exc: Exception, cause: Exception | None = None, context: Exception | None = None) -> Exception:
    """``exc`` as Python leaves it raised ``from cause``, or raised while handling ``context``."""
    exc.__cause__, exc.__context__ = cause, context
    return exc


def _cycle() -> BaseException:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    return a


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (JobCancelled("job x was cancelled"), True),
        (_raised(ChordError("Dependency x raised JobCancelled()"), cause=JobCancelled("x")), True),
        (_raised(ChordError("Dependency x raised TaskRevokedError('revoked')"), cause=TaskRevokedError("revoked")),
         True),
        (_raised(RuntimeError("while handling"), context=JobCancelled("x")), True),
        (_raised(ChordError("Dependency x raised EngineFailed()"), cause=EngineFailed("x")), False),
        (EngineFailed("node failed"), False),
        (None, False),
        (_cycle(), False),
    ],
)
def test_a_cancel_is_known_through_the_errors_raised_from_it(exc: BaseException | None, expected: bool) -> None:
    assert caused_by(exc, (JobCancelled, TaskRevokedError)) is expected


@pytest.mark.parametrize(
    ("level", "exc", "kept"),
    [
        (logging.ERROR, _raised(ChordError("Dependency x raised"), cause=JobCancelled("x")), False),
        (logging.WARNING, JobCancelled("x"), False),
        (logging.ERROR, _raised(ChordError("Dependency x raised"), cause=EngineFailed("x")), True),
        (logging.INFO, JobCancelled("x"), True),  # INFO is where a cancel belongs
        (logging.ERROR, None, True),
    ],
)
def test_an_expected_error_is_never_a_warning_or_an_error(level: int, exc: BaseException | None, kept: bool) -> None:
    only_cancels = ExpectedFilter((JobCancelled, TaskRevokedError))
    assert only_cancels.filter(_record(level=level, exc=exc)) is kept
    assert ExpectedFilter(()).filter(_record(level=level, exc=exc))  # nothing expected: everything passes


@pytest.mark.parametrize(
    ("url", "shown"),
    [("redis://:secret@redis:6379/0", "redis://***@redis:6379/0"),
     ("redis://:**@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
     ("sqs://AKIAEXAMPLE:**@", "sqs://***@"), ("sqs://", "sqs://"), ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0")],
)
def test_urls_in_log_lines_show_no_credentials(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
