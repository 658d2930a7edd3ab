"""ComfyClient against the fake server: the happy path and every way it goes wrong."""

from __future__ import annotations

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from narrator.audio import decode
from narrator.comfy.client import ClientConfig, ComfyClient, Deadline, PromptLost, PromptRejected, outcome_error
from narrator.comfy.messages import Outcome, pick_audio
from narrator.errors import EngineFailed, EngineUnavailable, JobCancelled, RetryableError
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port, wait_until

FAST = ClientConfig(request_timeout=5.0, poll_initial=0.05, poll_max=0.5, unreachable_timeout=5.0)


def tts_prompt(text: str = "Speaker 1: Hello there, this is a test.") -> dict[str, Any]:
    wf = json.loads((ROOT / "workflows" / "vibevoice-large.json").read_text())
    for n in "1234":
        wf[n]["inputs"]["audio"] = "test_tone.wav"
    wf["5"]["inputs"]["text"] = text
    return dict(wf)


@pytest.fixture
def client(fake_comfy: FakeComfy) -> Any:
    c = ComfyClient(fake_comfy.url, FAST)
    yield c
    c.close()


def _audio_seconds(client: ComfyClient, state: Any) -> float:
    file = pick_audio(state.audio)
    assert file is not None
    return decode(client.view(file, Deadline(5)), field=file.filename).duration


def test_success_follows_the_socket(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    state = client.run(tts_prompt("Speaker 1: one two three four five six seven eight nine ten"), Deadline(10))
    assert state.outcome is Outcome.SUCCESS and state.finished
    assert [f.filename for f in state.audio] == ["chunk_00001_.flac"]
    assert 2.9 < _audio_seconds(client, state) < 3.6  # ten words at about 0.3 s
    assert fake_comfy.stats.ws_connections == 1
    assert fake_comfy.stats.prompts[-1]["5"]["inputs"]["text"].endswith("ten")


def test_execution_error_names_node_and_message(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(fail_node="VibeVoiceTTS", fail_message="CUDA error: out of memory")
    state = client.run(tts_prompt(), Deadline(10))
    assert state.outcome is Outcome.ERROR
    error = outcome_error(state)
    assert isinstance(error, EngineFailed) and not error.retryable
    assert "node 5 (VibeVoiceTTS)" in str(error) and "CUDA error: out of memory" in str(error)


def test_failure_only_for_marked_text(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(fail_node="VibeVoiceTTS", fail_marker="BOOM")
    assert client.run(tts_prompt("Speaker 1: all is well."), Deadline(10)).outcome is Outcome.SUCCESS
    assert client.run(tts_prompt("Speaker 1: BOOM goes this one."), Deadline(10)).outcome is Outcome.ERROR


@pytest.mark.fake_comfy(hold=True)
def test_interrupt_ends_the_prompt(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    # Held: the prompt ends only when interrupted, so INTERRUPTED says the interrupt ended it.
    pid: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.run, tts_prompt(), Deadline(30), None, pid.append)
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")
        client.interrupt(pid[0])
        state = future.result(30)
    assert state.outcome is Outcome.INTERRUPTED and state.interrupted is not None
    assert state.interrupted.node_type == "VibeVoiceTTS"
    assert isinstance(outcome_error(state), JobCancelled)
    assert fake_comfy.stats.interrupts == [{"prompt_id": pid[0]}]


@pytest.mark.fake_comfy(hold=True)
def test_interrupt_for_another_prompt_is_ignored(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    pid: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.run, tts_prompt(), Deadline(30), None, pid.append)
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")
        client.interrupt("not-the-running-one")
        assert fake_comfy.stats.interrupts == [{"prompt_id": "not-the-running-one"}]
        assert fake_comfy.running is not None and not future.done()
        fake_comfy.configure(hold=False)
        assert future.result(30).outcome is Outcome.SUCCESS


REJECTIONS: dict[str, dict[str, Any]] = {
    "invalid_prompt": {"1": {"class_type": "Nope", "inputs": {}}},
    "prompt_no_outputs": {"1": {"class_type": "LoadAudio", "inputs": {"audio": "test_tone.wav"}}},
    "required_input_missing": {"1": {"class_type": "SaveAudio", "inputs": {"filename_prefix": "a"}}},
    "custom_validation_failed": {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "nope.wav"}},
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a"}},
    },
    "value_not_in_list": {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "test_tone.wav"}},
        "2": {"class_type": "SaveAudioMP3", "inputs": {"audio": ["1", 0], "filename_prefix": "a", "quality": "9k"}},
    },
    "value_bigger_than_max": {},
    "invalid_input_type": {},
    "return_type_mismatch": {
        "1": {"class_type": "LoadTextFromFileNode", "inputs": {"file": "x"}},
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a"}},
    },
    "exception_during_validation": {
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["9", 0], "filename_prefix": "a"}},
    },
}
_big = tts_prompt()
_big["5"]["inputs"]["inference_steps"] = 999
REJECTIONS["value_bigger_than_max"] = _big
_bad = copy.deepcopy(_big)
_bad["5"]["inputs"]["inference_steps"] = 10
_bad["5"]["inputs"]["cfg_scale"] = "loud"
REJECTIONS["invalid_input_type"] = _bad


@pytest.mark.parametrize("kind", sorted(REJECTIONS))
def test_rejected_prompts_are_permanent_and_say_why(kind: str, client: ComfyClient, fake_comfy: FakeComfy) -> None:
    if kind == "return_type_mismatch":
        fake_comfy.configure(enemyx_models=[])  # recorded with the Enemyx pack's LoadTextFromFileNode
    with pytest.raises(PromptRejected) as info:
        client.queue_prompt(REJECTIONS[kind], Deadline(5))
    assert not info.value.retryable and isinstance(info.value, EngineFailed)
    assert kind in json.dumps(info.value.body)
    for node_id, err in (info.value.body.get("node_errors") or {}).items():
        assert f"node {node_id} ({err['class_type']})" in str(info.value)
    assert fake_comfy.stats.prompts == []


def test_no_prompt_key_is_rejected(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    response = client._call("POST", "/prompt", Deadline(5), json={"client_id": "x"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "no_prompt"


def test_server_error_is_retryable(client: ComfyClient) -> None:
    with pytest.raises(EngineUnavailable, match="answered 500"):
        client._call("POST", "/prompt", Deadline(5), content=b"{not json")


def test_connection_refused_is_retryable() -> None:
    c = ComfyClient(f"http://127.0.0.1:{free_port()}", FAST)
    with pytest.raises(EngineUnavailable) as info:
        c.queue_prompt(tts_prompt(), Deadline(5))
    assert isinstance(info.value, RetryableError)
    with pytest.raises(EngineUnavailable, match="not ready after 1 s"):
        c.wait_ready(Deadline(1))
    c.close()


@pytest.mark.fake_comfy(synth_seconds=0.3)
def test_socket_dropped_mid_prompt_history_finishes(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(ws_drop=1, ws_stay_down=True)
    state = client.run(tts_prompt(), Deadline(10))
    assert state.outcome is Outcome.SUCCESS and [f.filename for f in state.audio] == ["chunk_00001_.flac"]
    assert fake_comfy.stats.ws_dropped == 1
    assert _audio_seconds(client, state) > 1.0


@pytest.mark.fake_comfy(synth_seconds=0.3)
def test_socket_dropped_then_reconnects(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(ws_drop=1)
    assert client.run(tts_prompt(), Deadline(10)).outcome is Outcome.SUCCESS
    assert fake_comfy.stats.ws_dropped == 1 and fake_comfy.stats.ws_connections == 2


def test_silent_socket_falls_back_to_history(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(ws_silent=True)
    started = time.monotonic()
    state = client.run(tts_prompt(), Deadline(10))
    assert state.outcome is Outcome.SUCCESS and state.audio  # from /history: the socket said nothing
    assert time.monotonic() - started < 6  # polled soon, not at the deadline (generous for a loaded machine)


def test_no_socket_at_all(fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(ws_refuse=True)
    c = ComfyClient(fake_comfy.url, FAST)
    try:
        state = c.run(tts_prompt(), Deadline(10))
    finally:
        c.close()
    assert state.outcome is Outcome.SUCCESS and fake_comfy.stats.ws_connections == 0


@pytest.mark.fake_comfy(hold=True)
def test_restart_mid_prompt_is_retryable_and_a_retry_succeeds(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.run, tts_prompt(), Deadline(20))
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")  # held: it stays running
        started = time.monotonic()
        fake_comfy.restart(down_seconds=0.3)
        with pytest.raises(PromptLost) as info:
            future.result(30)
    assert isinstance(info.value, EngineUnavailable) and info.value.retryable
    assert time.monotonic() - started < 10  # noticed, not waited out (the deadline is 20 s)
    fake_comfy.configure(hold=False)
    state = client.run(tts_prompt(), Deadline(10))
    assert state.outcome is Outcome.SUCCESS and fake_comfy.stats.restarts == 1


def test_cached_rerun_reuses_the_file(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    first = client.run(tts_prompt(), Deadline(10))
    files = fake_comfy.output_files()
    executed = dict(fake_comfy.stats.nodes_executed)
    again = client.run(tts_prompt(), Deadline(10))
    assert again.outcome is Outcome.SUCCESS
    assert [f.filename for f in again.audio] == [f.filename for f in first.audio]
    assert set(again.cached) == {"1", "2", "3", "4", "5", "6"}
    assert fake_comfy.output_files() == files
    assert dict(fake_comfy.stats.nodes_executed) == executed
    assert fake_comfy.stats.prompts_executed == 2


def test_server_that_stops_answering_times_out(fake_comfy: FakeComfy) -> None:
    # A request timeout far past the deadline: ending near 1.5 s, not 30, is the deadline's doing.
    c = ComfyClient(fake_comfy.url, ClientConfig(request_timeout=30, connect_timeout=0.5, poll_initial=0.05))
    fake_comfy.configure(hang=True)
    started = time.monotonic()
    try:
        with pytest.raises(EngineUnavailable):
            c.run(tts_prompt(), Deadline(1.5))
    finally:
        fake_comfy.configure(hang=False)
        c.close()
    assert time.monotonic() - started < 10


@pytest.mark.fake_comfy(synth_seconds=1.0)
def test_server_goes_quiet_mid_prompt(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.run, tts_prompt(), Deadline(1.0))
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")
        fake_comfy.configure(hang=True)
        with pytest.raises(EngineUnavailable, match="did not finish within 1 s|timed out|out of time"):
            future.result(10)
    fake_comfy.configure(hang=False)


def test_wait_ready_waits_for_a_server_coming_up(fake_comfy: FakeComfy) -> None:
    c = ComfyClient(fake_comfy.url, FAST)
    # Down long enough that the poll below cannot miss it on a loaded machine.
    threading.Thread(target=fake_comfy.restart, kwargs={"down_seconds": 2.0}, daemon=True).start()
    wait_until(lambda: fake_comfy._site is None, 30, "the fake to go down")
    stats = c.wait_ready(Deadline(10))
    c.close()
    assert stats["system"]["comfyui_version"]


def test_history_and_queue_housekeeping(client: ComfyClient, fake_comfy: FakeComfy) -> None:
    state = client.run(tts_prompt(), Deadline(10))
    assert state.prompt_id in fake_comfy.history
    client.delete_history([state.prompt_id])
    assert fake_comfy.history == {} and fake_comfy.stats.history_deletes == [state.prompt_id]
    assert client.history(state.prompt_id) == {}
    with pytest.raises(PromptLost):
        client.check(state.prompt_id, Deadline(5))
    assert client.queue() == {"queue_running": [], "queue_pending": []}
