"""The handler's pure parts: input split, output shape, secrets, streamed-chunk order."""

from __future__ import annotations

from typing import Any

import pytest

from narrator.errors import InvalidRequest
from narrator.result import JobResult, Metrics, Progress
from narrator.runpod.chunks import ChunkCursor
from narrator.runpod.output import MAX_ERROR_CHARS, error_output, progress_output, scrub, split_input, success_output

SEED_FIELDS = {"success", "audio_b64", "duration_seconds", "seed_used", "reference_used", "text_length", "metrics"}
NEW_FIELDS = {"job_id", "audio_url", "format", "sample_rate", "chunks", "captions_url"}


@pytest.mark.parametrize(
    ("raw", "request_", "stream"),
    [
        ({"text": "Hi"}, {"text": "Hi"}, False),
        ({"text": "Hi", "stream": True}, {"text": "Hi"}, True),
        ({"text": "Hi", "stream": False, "model": "local"}, {"text": "Hi", "model": "local"}, False),
        ({"stream": True}, {}, True),
    ],
)
def test_split_input_takes_handler_fields_out(raw: dict[str, Any], request_: dict[str, Any], stream: bool) -> None:
    parsed = split_input(raw)
    assert parsed.request == request_
    assert parsed.stream is stream


@pytest.mark.parametrize(
    ("raw", "field"),
    [("Hello", "input"), (None, "input"), ([{"text": "Hi"}], "input"), ({"text": "Hi", "stream": "yes"}, "stream")],
)
def test_split_input_refuses_what_is_not_an_input(raw: Any, field: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{field}: ") as err:
        split_input(raw)
    assert err.value.field == field


def _result() -> JobResult:
    return JobResult(
        duration_seconds=1.5, seed_used=42, text_length=12,
        reference_used="Using default voice of model local (it clones no reference)",
        metrics=Metrics(execution_time=0.7, model="local", sample_rate=22050), job_id="a" * 32,
        audio_url="https://bucket.example/out.wav?sig=1", output_key=f"jobs/{'a' * 32}/output.wav",
        format="wav", sample_rate=22050, chunks=1, captions_url="https://bucket.example/out.vtt?sig=1",
    )


def test_success_output_has_the_seed_fields_and_the_new_ones() -> None:
    out = success_output(_result().model_copy(update={"audio_b64": "UklGRg=="}), handler_seconds=0.8123)
    assert SEED_FIELDS | NEW_FIELDS <= set(out)
    assert out["success"] is True and out["audio_b64"] == "UklGRg=="
    assert out["metrics"]["execution_time"] == 0.7 and out["metrics"]["model"] == "local"
    assert out["metrics"]["sample_rate"] == 22050 and out["metrics"]["handler_time"] == 0.812


def test_success_output_without_inline_audio_keeps_the_url() -> None:
    out = success_output(_result(), handler_seconds=0.1)
    assert out["audio_b64"] is None
    assert out["audio_url"].startswith("https://")


@pytest.mark.parametrize(
    ("message", "secrets", "expected"),
    [
        ("broker redis://:hunter2@10.0.0.5:6379/0 refused", [], "broker redis://***@10.0.0.5:6379/0 refused"),
        ("cannot reach redis://user:pw@host/0", ["redis://user:pw@host/0"], "cannot reach ***"),
        ("auth admin:s3cret failed", ["admin:s3cret"], "auth *** failed"),
        ("text: text is empty", ["", ""], "text: text is empty"),
        ("an @ in a path is not userinfo: https://example.com/a@b", [], "an @ in a path is not userinfo: https://example.com/a@b"),
    ],
)
def test_scrub_masks_secrets(message: str, secrets: list[str], expected: str) -> None:
    assert scrub(message, secrets) == expected


def test_error_output_is_runpod_shaped_and_bounded() -> None:
    out = error_output("x" * 10_000)
    assert set(out) == {"error"}
    assert len(out["error"]) == MAX_ERROR_CHARS


def test_progress_output() -> None:
    progress = Progress(job_id="b" * 32, state="SYNTHESIZING", chunks_done=2, chunks_total=5, audio_seconds=3.14159)
    assert progress_output(progress) == {
        "job_id": "b" * 32, "state": "SYNTHESIZING", "chunks_done": 2, "chunks_total": 5, "audio_seconds": 3.142,
    }


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        ([{0}, {0, 1}, {0, 1, 2}], [[0], [1], [2]]),
        ([{1}, {1, 2}, {0, 1, 2}], [[], [], [0, 1, 2]]),
        ([{0, 2}, {0, 2, 3}, {0, 1, 2, 3}], [[0], [], [1, 2, 3]]),
        ([set(), {0, 1, 2, 3}, {0, 1, 2, 3}], [[], [0, 1, 2, 3], []]),
    ],
)
def test_chunks_stream_in_order_each_once(rounds: list[set[int]], expected: list[list[int]]) -> None:
    cursor = ChunkCursor()
    assert [cursor.advance(dict.fromkeys(done, 1.0)) for done in rounds] == expected
