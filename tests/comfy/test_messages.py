"""Websocket and /history parsing, replayed on every trace recorded from a real ComfyUI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from narrator.comfy.messages import (
    Executed,
    Executing,
    ExecutionError,
    Other,
    Outcome,
    OutputFile,
    Progress,
    PromptState,
    Status,
    advance,
    describe_rejection,
    from_history,
    in_queue,
    parse_message,
    pick_audio,
    track,
)
from tests.support.comfy import load_trace


def _ws(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["ws"] for e in entries if "ws" in e]


def _prompt_id(entries: list[dict[str, Any]]) -> str:
    return next(e["post_prompt"]["body"]["prompt_id"] for e in entries if "post_prompt" in e)


def _history(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e["history"]["body"] for e in entries if "history" in e)


SIMPLE = [
    # trace, outcome, audio files (subfolder/filename/type), cached nodes, error node (id, type)
    ("load_save.json", Outcome.SUCCESS, ["audio/ComfyUI_00001_.flac/output"], (), None),
    ("load_save_rerun.json", Outcome.SUCCESS, ["audio/ComfyUI_00001_.flac/output"], ("1", "2"), None),
    (
        "multi.json",
        Outcome.SUCCESS,
        [
            "tts/run42_00001_.mp3/output",
            "/ComfyUI_temp_iqiok_00001_.flac/temp",
            "tts/run42_00002_.opus/output",
            "tts/run42_00003_.flac/output",
        ],
        (),
        None,
    ),
    ("corrupt.json", Outcome.ERROR, [], (), ("1", "LoadAudio")),
    ("enemyx_nomodel.json", Outcome.ERROR, [], ("1",), ("2", "VibeVoiceSingleSpeakerNode")),
]


def _files(state: PromptState) -> list[str]:
    return [f"{f.subfolder}/{f.filename}/{f.type}" for f in state.audio]


@pytest.mark.parametrize(("trace", "outcome", "files", "cached", "error"), SIMPLE)
def test_socket_messages_track_the_prompt(trace: str, outcome: Outcome, files: list[str], cached: tuple[str, ...],
                                          error: tuple[str, str] | None) -> None:
    entries = load_trace(trace)
    assert isinstance(entries, list)
    pid = _prompt_id(entries)
    state = track(pid, (parse_message(m) for m in _ws(entries)))
    assert state.finished
    assert state.outcome is outcome
    assert _files(state) == files
    assert state.cached == cached
    if error:
        assert state.error is not None and (state.error.node_id, state.error.node_type) == error
        assert state.error.exception_message
    else:
        assert state.error is None


@pytest.mark.parametrize(("trace", "outcome", "files", "cached", "error"), SIMPLE)
def test_history_answer_gives_the_same_state(trace: str, outcome: Outcome, files: list[str],
                                             cached: tuple[str, ...], error: tuple[str, str] | None) -> None:
    entries = load_trace(trace)
    assert isinstance(entries, list)
    pid = _prompt_id(entries)
    from_ws = track(pid, (parse_message(m) for m in _ws(entries)))
    state = from_history(pid, _history(entries))
    assert state is not None and state.finished
    assert state.outcome is outcome
    assert sorted(_files(state)) == sorted(files)
    assert state.cached == cached
    assert state.error == from_ws.error


def test_finished_only_on_the_last_word() -> None:
    entries = load_trace("load_save.json")
    assert isinstance(entries, list)
    pid = _prompt_id(entries)
    events = [parse_message(m) for m in _ws(entries)]
    last = len(events) - 1
    assert events[last] == Executing(pid, None)
    assert not track(pid, events[:last]).finished
    assert track(pid, events[:last]).outcome is Outcome.SUCCESS


def test_interrupt_trace_three_prompts() -> None:
    trace = load_trace("interrupt.json")
    assert isinstance(trace, dict)
    pids, entries = trace["pids"], trace["log"]
    events = [parse_message(m) for m in _ws(entries)]
    a = track(pids["A"], events)
    assert a.finished and a.outcome is Outcome.INTERRUPTED
    assert a.interrupted is not None and a.interrupted.node_type == "ProbeSlowProgress"
    assert a.progress == (8.0, 50.0)
    b = track(pids["B"], events)  # deleted from the queue: never started
    assert b == PromptState(pids["B"])
    c = track(pids["C"], events)
    assert c.outcome is Outcome.SUCCESS and _files(c) == ["audio/intC_00001_.flac/output"]
    history_a = next(e["history_A"] for e in entries if "history_A" in e)
    history_b = next(e["history_B"] for e in entries if "history_B" in e)
    history_c = next(e["history_C"] for e in entries if "history_C" in e)
    assert from_history(pids["A"], history_a).outcome is Outcome.INTERRUPTED  # type: ignore[union-attr]
    assert from_history(pids["B"], history_b) is None
    assert _files(from_history(pids["C"], history_c)) == _files(c)  # type: ignore[arg-type]
    queue = next(e["GET /queue"] for e in entries if "GET /queue" in e)
    after = next(e["GET /queue after delete"] for e in entries if "GET /queue after delete" in e)
    assert in_queue(pids["A"], queue) and in_queue(pids["B"], queue) and in_queue(pids["C"], queue)
    assert not in_queue(pids["B"], after) and in_queue(pids["C"], after)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "s"}}', Status(2, "s")),
        ('{"type": "executing", "data": {"node": null, "prompt_id": "p"}}', Executing("p", None)),
        ('{"type": "progress", "data": {"value": 3, "max": 10, "prompt_id": "p", "node": "5"}}',
         Progress("p", "5", 3.0, 10.0)),
        ('{"type": "executed", "data": {"node": "6", "output": {"images": []}, "prompt_id": "p"}}',
         Executed("p", "6", ())),
        ('{"type": "executed", "data": {"node": "6", "output": {"audio": [{"filename": "a.flac"}]}, "prompt_id": "p"}}',
         Executed("p", "6", (OutputFile("a.flac", "", "output", "6"),))),
        ('{"type": "crystools.monitor", "data": {"cpu": 3}}', Other("crystools.monitor", {"cpu": 3})),
        (b"\x00\x00\x00\x01PNG", Other("binary")),
        ("not json", Other("malformed", "not json")),
        ('{"data": {}}', Other("malformed", {"data": {}})),
    ],
)
def test_parse_message(raw: str | bytes, expected: object) -> None:
    assert parse_message(raw) == expected


def test_other_prompts_do_not_move_the_state() -> None:
    state = PromptState("mine")
    for event in (Executing("theirs", None), ExecutionError("theirs", "1", "X", "E", "boom")):
        assert advance(state, event) is state


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        ([], None),
        ([OutputFile("a.mp3"), OutputFile("b.flac", type="temp"), OutputFile("c.opus")], "a.mp3"),
        ([OutputFile("p.flac", type="temp"), OutputFile("a.opus"), OutputFile("b.flac")], "b.flac"),
        ([OutputFile("p.flac", type="temp")], "p.flac"),
        ([OutputFile("x.wav"), OutputFile("y.flac")], "x.wav"),
    ],
)
def test_pick_audio(files: list[OutputFile], chosen: str | None) -> None:
    picked = pick_audio(files)
    assert (picked.filename if picked else None) == chosen


ERRORS: dict[str, Any] = load_trace("errors_out.json")  # type: ignore[assignment]


@pytest.mark.parametrize("case", sorted(k for k, v in ERRORS.items() if v["status"] == 400))
def test_every_recorded_rejection_is_described(case: str) -> None:
    body = ERRORS[case]["body"]
    text = describe_rejection(body)
    parsed: Any = body if isinstance(body, dict) else json.loads(body)
    assert parsed["error"]["type"] in text
    for node_id, info in parsed["node_errors"].items():
        assert f"node {node_id} ({info['class_type']})" in text
        for err in info["errors"]:
            assert err["message"] in text
