"""The fake ComfyUI behaves like the recorded one: message sequences, uploads, /view, control API."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websocket

from narrator.comfy.client import ComfyClient, Deadline
from narrator.comfy.messages import Outcome
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT, TRACES, FakeProcess, load_trace
from tests.support.procs import wait_until

QUIET = {"status", "progress_state", "progress"}


def _recorded(trace: str) -> tuple[list[str], dict[str, list[str]]]:
    entries = load_trace(trace)
    assert isinstance(entries, list)
    kinds = [e["ws"]["type"] for e in entries if "ws" in e and e["ws"]["type"] not in QUIET]
    files = {
        e["ws"]["data"]["node"]: [a["filename"] for a in e["ws"]["data"]["output"]["audio"]]
        for e in entries
        if "ws" in e and e["ws"]["type"] == "executed" and e["ws"]["data"]["output"]
    }
    return kinds, files


def _replay(fake: FakeComfy, prompt: dict[str, Any]) -> list[dict[str, Any]]:
    """Post like the recorder did and collect this prompt's messages up to its last word."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{fake.port}/ws?clientId=rec", timeout=5)
    try:
        hello = json.loads(ws.recv())
        assert hello["type"] == "status" and hello["data"]["sid"] == "rec"
        answer = httpx.post(f"{fake.url}/prompt", json={"prompt": prompt, "client_id": "rec"}, timeout=5)
        assert answer.status_code == 200, answer.text
        pid = answer.json()["prompt_id"]
        messages = []
        while True:
            msg = json.loads(ws.recv())
            if msg["data"].get("prompt_id") not in (pid, None):
                continue
            messages.append(msg)
            if msg["type"] == "executing" and msg["data"]["node"] is None:
                return messages
    finally:
        ws.close()


def _prompt(name: str) -> dict[str, Any]:
    return dict(json.loads((TRACES / f"prompt_{name}.json").read_text()))


@pytest.mark.parametrize("case", ["load_save", "multi", "corrupt", "vibevoice_1_5b"])
def test_message_sequence_matches_the_recording(case: str, fake_comfy: FakeComfy) -> None:
    shutil.copy(fake_comfy.ctx.input_dir / "test_tone.wav", fake_comfy.ctx.input_dir / "test_tone (1).wav")
    # vibevoice_1_5b: the real node pack with four LoadAudio of one uploaded voice (docs/gpu.md).
    (fake_comfy.ctx.input_dir / "narrator").mkdir(exist_ok=True)
    shutil.copy(fake_comfy.ctx.input_dir / "test_tone.wav", fake_comfy.ctx.input_dir / "narrator" / "voice.wav")
    (fake_comfy.ctx.input_dir / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    kinds, files = _recorded(f"{case}.json")
    messages = _replay(fake_comfy, _prompt(case))
    assert [m["type"] for m in messages if m["type"] not in QUIET] == kinds
    got = {m["data"]["node"]: [a["filename"] for a in m["data"]["output"]["audio"]]
           for m in messages if m["type"] == "executed" and m["data"]["output"]}
    assert set(got) == set(files)
    for node, names in files.items():
        if "temp" not in names[0]:
            assert got[node] == names
    if case == "corrupt":
        error = next(m["data"] for m in messages if m["type"] == "execution_error")
        assert (error["node_id"], error["node_type"], error["exception_type"]) == (
            "1", "LoadAudio", "av.error.InvalidDataError")


def test_rerun_and_enemyx_without_model_match_the_recording(fake_comfy: FakeComfy) -> None:
    _replay(fake_comfy, _prompt("load_save"))
    kinds, files = _recorded("load_save_rerun.json")
    rerun = _replay(fake_comfy, _prompt("load_save"))
    assert [m["type"] for m in rerun if m["type"] not in QUIET] == kinds
    assert next(m for m in rerun if m["type"] == "execution_cached")["data"]["nodes"] == ["1", "2"]
    assert {m["data"]["node"]: [a["filename"] for a in m["data"]["output"]["audio"]]
            for m in rerun if m["type"] == "executed"} == files
    # The recording's server had the Enemyx pack, with no VibeVoice weights.
    fake_comfy.configure(enemyx_models=[])
    kinds, _ = _recorded("enemyx_nomodel.json")
    messages = _replay(fake_comfy, _prompt("enemyx_nomodel"))
    assert [m["type"] for m in messages if m["type"] not in QUIET] == kinds
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    expected = "Error generating speech: Model 'No models found' not found in models/vibevoice/\n"
    assert error["exception_message"] == expected


def test_missing_tokenizer_fails_like_the_real_loader_offline(fake_comfy: FakeComfy) -> None:
    (fake_comfy.ctx.input_dir / "narrator").mkdir(exist_ok=True)
    shutil.copy(fake_comfy.ctx.input_dir / "test_tone.wav", fake_comfy.ctx.input_dir / "narrator" / "voice.wav")
    _replay(fake_comfy, _prompt("vibevoice_1_5b"))  # as recorded: the voices were loaded by an earlier run
    fake_comfy.configure(drop_files=["VibeVoice/VibeVoice-1.5B/tokenizer.json"])
    kinds, _ = _recorded("tokenizer_missing.json")
    messages = _replay(fake_comfy, _prompt("tokenizer_missing"))
    assert [m["type"] for m in messages if m["type"] not in QUIET] == kinds
    recorded = next(e["ws"]["data"] for e in load_trace("tokenizer_missing.json") if "ws" in e  # type: ignore[union-attr]
                    and e["ws"]["type"] == "execution_error")
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    for key in ("node_id", "node_type", "exception_type", "exception_message"):
        assert error[key] == recorded[key], key


@pytest.mark.parametrize(
    ("text", "bound", "cloned"),
    [
        ("Speaker 1: Hello there, friend.", 1, True),
        ("Speaker 2: Hello there, friend.", 2, False),  # the processor makes the text speaker 1, the voice 0
        ("Speaker 1: Hi.\nSpeaker 2: Hello there, friend.", 2, True),
    ],
)
def test_vibevoice_node_hears_voices_as_the_processor_numbers_them(text: str, bound: int, cloned: bool) -> None:
    from tests.fakes import comfy_nodes

    voice = {"waveform": np.sin(np.arange(24000, dtype=np.float32) / 7.0)[None, :], "sample_rate": 24000}
    other = {"waveform": np.sin(np.arange(24000, dtype=np.float32) / 3.0)[None, :], "sample_rate": 24000}
    inputs = {"text": text, "seed": 1, f"speaker_{bound}_voice": voice}
    if bound == 2 and "Speaker 1" in text:
        inputs["speaker_1_voice"] = other
    ctx = comfy_nodes.Context(Path("."), Path("."), Path("."))
    (out,), _ = comfy_nodes.vibevoice_tts(ctx, inputs)
    last = comfy_nodes.script(text)[-1]
    pitch = comfy_nodes.voice_pitch(bound, voice if cloned else None)
    expected = comfy_nodes.speak(last[1], pitch, ctx.seconds_per_word, 1.0, 1)
    assert np.array_equal(out["waveform"][0, -len(expected) - int(0.15 * 24000):-int(0.15 * 24000)], expected)


def test_upload_rename_and_overwrite_rules(fake_comfy: FakeComfy) -> None:
    def upload(data: bytes, **form: str) -> httpx.Response:
        return httpx.post(f"{fake_comfy.url}/upload/image", files={"image": ("v.wav", data)}, data=form, timeout=5)

    assert upload(b"one").json() == {"name": "v.wav", "subfolder": "", "type": "input"}
    assert upload(b"one").json()["name"] == "v.wav"  # same bytes: reused
    assert upload(b"two").json()["name"] == "v (1).wav"  # other bytes: renamed
    assert upload(b"three", overwrite="true").json()["name"] == "v.wav"
    assert (fake_comfy.ctx.input_dir / "v.wav").read_bytes() == b"three"
    assert upload(b"x", subfolder="narrator").json() == {"name": "v.wav", "subfolder": "narrator", "type": "input"}
    assert httpx.post(f"{fake_comfy.url}/upload/image", data={"subfolder": "x"}, timeout=5).status_code == 400
    listed = httpx.get(f"{fake_comfy.url}/object_info/LoadAudio", timeout=5).json()
    assert "narrator/v.wav" in listed["LoadAudio"]["input"]["required"]["audio"][0]


def test_view_rules(fake_comfy: FakeComfy) -> None:
    (fake_comfy.ctx.output_dir / "a").mkdir()
    (fake_comfy.ctx.output_dir / "a" / "x.flac").write_bytes(b"fLaC")
    view = f"{fake_comfy.url}/view"
    ok = httpx.get(view, params={"filename": "x.flac", "subfolder": "a", "type": "output"}, timeout=5)
    assert ok.status_code == 200 and ok.headers["content-type"] == "audio/flac" and ok.content == b"fLaC"
    assert httpx.get(view, params={"filename": "../x.flac", "subfolder": "a"}, timeout=5).status_code == 400
    assert httpx.get(view, params={"filename": "x.flac", "subfolder": "../.."}, timeout=5).status_code == 403
    assert httpx.get(view, params={"filename": "nope.flac"}, timeout=5).status_code == 404


def test_prompt_without_client_id_tells_nobody(fake_comfy: FakeComfy) -> None:
    ws = websocket.create_connection(f"ws://127.0.0.1:{fake_comfy.port}/ws?clientId=watcher", timeout=5)
    try:
        ws.recv()
        pid = httpx.post(f"{fake_comfy.url}/prompt", json={"prompt": _prompt("load_save")}, timeout=5).json()
        deadline = time.monotonic() + 5
        while pid["prompt_id"] not in fake_comfy.history and time.monotonic() < deadline:
            ws.settimeout(0.05)
            try:
                msg = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            assert msg["type"] == "status"  # queue changes go to everyone, execution messages to nobody
        assert pid["prompt_id"] in fake_comfy.history
    finally:
        ws.close()


def test_control_api(fake_comfy: FakeComfy) -> None:
    bad = httpx.post(f"{fake_comfy.url}/_fake/config", json={"no_such_knob": 1}, timeout=5)
    assert bad.status_code == 400
    good = httpx.post(f"{fake_comfy.url}/_fake/config", json={"synth_seconds": 0.25}, timeout=5)
    assert good.json()["synth_seconds"] == 0.25 and fake_comfy.config.synth_seconds == 0.25
    stats = httpx.get(f"{fake_comfy.url}/_fake/stats", timeout=5).json()
    assert stats["prompts_executed"] == 0 and stats["restarts"] == 0


def test_hold_keeps_a_prompt_running_until_released_or_interrupted(fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(hold=True)
    client = ComfyClient(fake_comfy.url)
    try:
        held = client.queue_prompt(_vibevoice_prompt("Speaker 1: Held until released."), Deadline(10))
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")
        time.sleep(0.5)  # not synchronisation: a span in which a prompt that is not held ends
        assert fake_comfy.running is not None and fake_comfy.stats.prompts_executed == 0
        httpx.post(f"{fake_comfy.url}/_fake/config", json={"hold": False}, timeout=5).raise_for_status()
        assert client.wait(held, Deadline(30)).outcome is Outcome.SUCCESS
        fake_comfy.configure(hold=True)
        interrupted = client.queue_prompt(_vibevoice_prompt("Speaker 1: Held until interrupted."), Deadline(10))
        wait_until(lambda: fake_comfy.running is not None, 30, "the prompt to run")
        client.interrupt(interrupted)
        assert client.wait(interrupted, Deadline(30)).outcome is Outcome.INTERRUPTED
    finally:
        fake_comfy.configure(hold=False)
        client.close()


def test_hold_until_queued_ends_a_prompt_once_another_waits(fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(hold_until_queued=True)
    client = ComfyClient(fake_comfy.url)
    try:
        first = client.queue_prompt(_vibevoice_prompt("Speaker 1: First in line."), Deadline(10))
        wait_until(lambda: fake_comfy.running is not None, 30, "the first prompt to run")
        time.sleep(0.5)  # not synchronisation: a span in which a prompt that is not held ends
        assert fake_comfy.stats.prompts_executed == 0
        second = client.queue_prompt(_vibevoice_prompt("Speaker 1: Second in line."), Deadline(10))
        assert client.wait(first, Deadline(30)).outcome is Outcome.SUCCESS
        wait_until(lambda: fake_comfy.running is not None and fake_comfy.running.prompt_id == second, 30,
                   "the second prompt to run")
        time.sleep(0.5)  # as above
        assert fake_comfy.stats.prompts_executed == 1  # nothing behind it: held
        fake_comfy.configure(hold_until_queued=False)
        assert client.wait(second, Deadline(30)).outcome is Outcome.SUCCESS
    finally:
        fake_comfy.configure(hold_until_queued=False)
        client.close()


def test_fakes_as_processes(fake_comfy_process: FakeProcess,
                            fake_comfy_processes: Callable[..., list[FakeProcess]]) -> None:
    more = fake_comfy_processes(1, synth_seconds=0.1)
    assert more[0].url != fake_comfy_process.url
    other = ComfyClient(more[0].url)
    try:
        assert other.run(_prompt("load_save"), Deadline(10)).outcome is Outcome.SUCCESS
    finally:
        other.close()
    fake_comfy_process.configure(fail_node="SaveAudio")
    client = ComfyClient(fake_comfy_process.url)
    try:
        state = client.run(_prompt("load_save"), Deadline(10))
        assert state.outcome is Outcome.ERROR and state.error is not None
        assert state.error.node_type == "SaveAudio"
        fake_comfy_process.configure(fail_node=None)
        assert client.run(_prompt("load_save"), Deadline(10)).outcome is Outcome.SUCCESS
    finally:
        client.close()
    assert fake_comfy_process.stats()["prompts_executed"] == 2


def test_model_listing_like_comfyui(fake_comfy: FakeComfy) -> None:
    client = ComfyClient(fake_comfy.url)
    try:
        listing = client.models("tts")
        assert listing is not None and listing == sorted(listing)
        assert "VibeVoice/VibeVoice-1.5B/tokenizer.json" in listing
        assert "VibeVoice/VibeVoice-Large/model-00001-of-00001.safetensors" in listing
        assert client.models("checkpoints") is None  # an unregistered folder type: 404
        fake_comfy.configure(drop_files=["VibeVoice/VibeVoice-1.5B/tokenizer.json"])
        assert "VibeVoice/VibeVoice-1.5B/tokenizer.json" not in (client.models("tts") or [])
    finally:
        client.close()
    assert httpx.get(f"{fake_comfy.url}/models", timeout=5).json() == ["tts"]


def test_system_stats_and_vram_like_a_gpu_server(fake_comfy: FakeComfy) -> None:
    client = ComfyClient(fake_comfy.url)
    try:
        stats = client.system_stats()
        assert stats["system"]["comfyui_version"] == "0.3.64" and stats["system"]["pytorch_version"]
        device = stats["devices"][0]
        assert device["type"] == "cuda" and device["index"] == 0
        fields = {"name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"}
        assert set(device) == fields
        idle = device["vram_total"] - device["vram_free"]
        state = client.run(_vibevoice_prompt(), Deadline(10))
        assert state.outcome is Outcome.SUCCESS
        loaded = client.system_stats()["devices"][0]
        assert loaded["vram_total"] - loaded["vram_free"] == idle + 6 * 2**30  # VibeVoice-1.5B stays loaded
        client.free(unload_models=True)
        after = client.system_stats()["devices"][0]
        assert after["vram_total"] - after["vram_free"] == idle
        fake_comfy.configure(gpu=False)
        assert client.system_stats()["devices"][0]["type"] == "cpu"
    finally:
        client.close()


def test_dropped_node_is_unknown_to_the_server(fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(drop_nodes=["VibeVoiceTTS"])
    assert "VibeVoiceTTS" not in httpx.get(f"{fake_comfy.url}/object_info", timeout=5).json()
    answer = httpx.post(f"{fake_comfy.url}/prompt", json={"prompt": _vibevoice_prompt()}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Cannot execute because node VibeVoiceTTS does not exist."


def _vibevoice_prompt(text: str | None = None) -> dict[str, Any]:
    wf = json.loads((ROOT / "workflows" / "vibevoice-1.5b.json").read_text())
    for n in "1234":
        wf[n]["inputs"]["audio"] = "test_tone.wav"
    if text is not None:
        wf["5"]["inputs"]["text"] = text
    return dict(wf)
