"""ComfyEngine on the fake: voices, bindings, defaults, errors, cancel, formats."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrator.engines import resolve_params
from narrator.engines.base import SynthesisInput, Voice
from narrator.engines.comfyui import ComfyEngine, bind_slots
from narrator.errors import EngineFailed, EngineUnavailable, InvalidRequest, JobCancelled, ModelError
from narrator.models import ModelSpec, load_model_file
from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port, wait_until


def model(name: str) -> ModelSpec:
    return load_model_file(ROOT / "workflows" / f"{name}.toml")


def wav(freq: float, seconds: float = 1.0) -> bytes:
    t = np.arange(int(24000 * seconds)) / 24000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def engine(comfy_settings: Settings) -> Iterator[ComfyEngine]:
    e = ComfyEngine(model("vibevoice-large"), comfy_settings)
    yield e
    e.close()


def test_chunk_becomes_mono_float_audio_and_leaves_no_history(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    audio = engine.synthesize(SynthesisInput("Speaker 1: Five words are spoken here.", job_id="j", index=3))
    assert audio.sample_rate == 24000 and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert 1.4 < audio.duration < 2.0
    assert float(np.abs(audio.samples).max()) > 0.1
    assert fake_comfy.history == {}
    assert len(fake_comfy.stats.history_deletes) == 1


def test_render_stores_comfyuis_flac_byte_for_byte(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    clip = engine.render(SynthesisInput("Speaker 1: Five words are spoken here.", job_id="j", index=3))
    saved = sorted(fake_comfy.ctx.output_dir.rglob("*.flac"), key=lambda p: p.stat().st_mtime)[-1]
    assert clip.flac == saved.read_bytes()  # passed through: not decoded and encoded again
    info = sf.info(io.BytesIO(clip.flac))
    assert (info.format, info.channels, info.samplerate) == ("FLAC", 1, 24000)
    assert clip.seconds == pytest.approx(info.duration, abs=1e-6) and 1.4 < clip.seconds < 2.0


def test_resolved_params_are_bound_as_given(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    params = resolve_params(engine.spec, {"seed": 7, "steps": 20})
    assert params == {"seed": 7, "steps": 20, "cfg_scale": 1.3, "temperature": 0.95, "top_p": 0.95}
    engine.synthesize(SynthesisInput("Speaker 1: Hello.", params=params))
    posted = fake_comfy.stats.prompts[-1]["5"]["inputs"]
    assert (posted["seed"], posted["inference_steps"], posted["cfg_scale"], posted["top_p"]) == (7, 20, 1.3, 0.95)
    assert posted["text"] == "Speaker 1: Hello."


def test_the_engine_trusts_its_params(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    """No second merge of defaults, no second check: the manifest's settings go out as they are."""
    engine.synthesize(SynthesisInput("Speaker 1: Hello.", params={"seed": 3}))
    posted = fake_comfy.stats.prompts[-1]["5"]["inputs"]
    workflow = json.loads((ROOT / "workflows" / "vibevoice-large.json").read_text())["5"]["inputs"]
    assert posted["seed"] == 3 and posted["inference_steps"] == workflow["inference_steps"]


def test_out_of_range_setting_is_refused_without_a_server() -> None:
    """ComfyEngine.check_params: the node's ranges from the packaged object_info, no client built."""
    spec = model("vibevoice-large")
    assert ComfyEngine.check_params(spec, {"steps": 500, "cfg_scale": 2}) == {"steps": 500, "cfg_scale": 2.0}
    with pytest.raises(InvalidRequest, match=r"^voice_settings.steps: .*VibeVoiceTTS.inference_steps"):
        ComfyEngine.check_params(spec, {"steps": 9999})
    with pytest.raises(InvalidRequest, match="^voice_settings.speed: model 'vibevoice-large' does not support speed"):
        ComfyEngine.check_params(spec, {"speed": 1.1})
    # Speed 1.0 asks for nothing (seed-era clients send it to every model): taken, and not bound.
    assert ComfyEngine.check_params(spec, {"speed": 1.0, "seed": 3}) == {"seed": 3}


def test_voices_upload_once_by_content(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    alice, bob = Voice(wav(200)), Voice(wav(300))
    voices, both = {1: alice, 2: bob}, (1, 2)  # a chunk where speakers 1 and 2 are slots 1 and 2
    first = engine.synthesize(SynthesisInput("Speaker 1: Hi Bob.\nSpeaker 2: Hi Alice.", voices, speakers=both))
    engine.synthesize(SynthesisInput("Speaker 1: Again.\nSpeaker 2: And again.", voices, speakers=both))
    names = {f"narrator/{alice.digest}.wav", f"narrator/{bob.digest}.wav"}
    assert names <= set(fake_comfy.stats.uploads)
    assert len([u for u in fake_comfy.stats.uploads if u in names]) == 2  # once each, not per chunk
    posted = fake_comfy.stats.prompts[-1]
    assert posted["1"]["inputs"]["audio"] == f"narrator/{alice.digest}.wav"
    assert posted["2"]["inputs"]["audio"] == f"narrator/{bob.digest}.wav"
    stored = fake_comfy.ctx.input_dir / "narrator" / f"{alice.digest}.wav"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == alice.digest
    # A cloned voice changes the sound: the same text without it differs.
    plain = engine.synthesize(SynthesisInput("Speaker 1: Hi Bob.\nSpeaker 2: Hi Alice.", speakers=(1, 2)))
    assert first.samples.shape != plain.samples.shape or not np.allclose(first.samples, plain.samples)


A, B, C, D, DEFAULT, DEFAULT_3 = (Voice(bytes([n])) for n in range(6))
JOB = {1: A, 2: B, 3: C, 4: D}


@pytest.mark.parametrize(
    ("speakers", "given", "defaults", "bound"),
    [
        # Slot j carries the voice of speakers[j - 1]; unused slots get the model's default.
        ((1,), JOB, {1: DEFAULT}, {1: A, 2: DEFAULT, 3: DEFAULT, 4: DEFAULT}),
        ((2,), JOB, {1: DEFAULT}, {1: B, 2: DEFAULT, 3: DEFAULT, 4: DEFAULT}),
        ((3,), JOB, {1: DEFAULT}, {1: C, 2: DEFAULT, 3: DEFAULT, 4: DEFAULT}),
        ((4,), JOB, {1: DEFAULT}, {1: D, 2: DEFAULT, 3: DEFAULT, 4: DEFAULT}),
        ((1, 3), JOB, {1: DEFAULT}, {1: A, 2: C, 3: DEFAULT, 4: DEFAULT}),
        ((2, 4), JOB, {1: DEFAULT}, {1: B, 2: D, 3: DEFAULT, 4: DEFAULT}),
        ((1, 2, 3, 4), JOB, {1: DEFAULT}, JOB),
        # No job voice for the speaker: the model's default for that speaker, else its default voice.
        ((3,), {1: A}, {1: DEFAULT, 3: DEFAULT_3}, {1: DEFAULT_3, 2: DEFAULT, 3: DEFAULT_3, 4: DEFAULT}),
        ((2, 3), {}, {1: DEFAULT, 3: DEFAULT_3}, {1: DEFAULT, 2: DEFAULT_3, 3: DEFAULT_3, 4: DEFAULT}),
        # No defaults (Enemyx): unused slots stay empty, and so does a speaker without a voice.
        ((3,), JOB, {}, {1: C}),
        ((2, 3), {3: C}, {}, {2: C}),
    ],
)
def test_slots_carry_their_speakers_voices(
    speakers: tuple[int, ...], given: dict[int, Voice], defaults: dict[int, Voice], bound: dict[int, Voice]
) -> None:
    assert bind_slots([1, 2, 3, 4], speakers, given, defaults) == bound


@pytest.mark.parametrize("speakers", [(1, 1), (0,), (1, 2, 3)])
def test_speakers_that_do_not_fit_the_slots_are_refused(speakers: tuple[int, ...]) -> None:
    with pytest.raises(InvalidRequest, match="do not fit the voice slots"):
        bind_slots([1, 2], speakers, {}, {1: DEFAULT})


@pytest.mark.parametrize("speakers", [(3,), (2, 4)])
def test_the_prompt_binds_each_slot_to_its_speakers_voice(
    speakers: tuple[int, ...], engine: ComfyEngine, fake_comfy: FakeComfy
) -> None:
    voices = {n: Voice(wav(100 + 50 * n)) for n in (1, 2, 3, 4)}
    text = "\n".join(f"Speaker {j}: Line {j}." for j in range(1, len(speakers) + 1))
    assert engine.synthesize(SynthesisInput(text, voices, speakers=speakers)).duration > 0.5
    posted = fake_comfy.stats.prompts[-1]
    for j, speaker in enumerate(speakers, start=1):
        assert posted[str(j)]["inputs"]["audio"] == f"narrator/{voices[speaker].digest}.wav"
    unused = {posted[str(j)]["inputs"]["audio"] for j in range(len(speakers) + 1, 5)}
    assert len(unused) == 1 and not unused & {f"narrator/{v.digest}.wav" for v in voices.values()}


def test_voiceless_run_uses_the_default_voice(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    audio = engine.synthesize(SynthesisInput("Speaker 1: No voice was given for this one."))
    assert audio.duration > 1
    posted = fake_comfy.stats.prompts[-1]
    default = {posted[n]["inputs"]["audio"] for n in "1234"}
    assert len(default) == 1 and default.pop().startswith("narrator/")
    assert len(fake_comfy.stats.uploads) == 1


def test_a_model_without_default_voices_leaves_empty_voice_slots_out(
    tmp_path: Path, comfy_settings: Settings, fake_comfy: FakeComfy
) -> None:
    shutil.copy(ROOT / "workflows" / "vibevoice-1.5b.json", tmp_path)
    toml = (ROOT / "workflows" / "vibevoice-1.5b.toml").read_text()
    (tmp_path / "vibevoice-1.5b.toml").write_text(toml.replace('voice = "voices/narrator-default.flac"', ""))
    e = ComfyEngine(load_model_file(tmp_path / "vibevoice-1.5b.toml"), comfy_settings)
    try:
        voiced = e.synthesize(SynthesisInput("Speaker 1: Only I lent a voice.", voices={1: Voice(wav(250))}))
    finally:
        e.close()
    assert voiced.duration > 1
    posted = fake_comfy.stats.prompts[-1]
    assert [n["class_type"] for n in posted.values()] == ["LoadAudio", "VibeVoiceTTS", "SaveAudio"]
    inputs = posted["5"]["inputs"]
    assert "speaker_1_voice" in inputs and not {f"speaker_{n}_voice" for n in (2, 3, 4)} & set(inputs)


def test_too_many_speakers_is_refused(engine: ComfyEngine) -> None:
    with pytest.raises(InvalidRequest, match="not \\[5\\]"):
        engine.synthesize(SynthesisInput("Speaker 5: hi", voices={5: Voice(wav(200))}))


def test_execution_error_is_permanent_with_node_and_message(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    fake_comfy.configure(fail_node="VibeVoiceTTS", fail_marker="poison", fail_message="CUDA error: out of memory")
    engine.synthesize(SynthesisInput("Speaker 1: This chunk is fine."))
    with pytest.raises(EngineFailed) as info:
        engine.synthesize(SynthesisInput("Speaker 1: This chunk has poison in it."))
    assert not info.value.retryable
    assert "VibeVoiceTTS" in str(info.value) and "CUDA error: out of memory" in str(info.value)
    assert fake_comfy.history == {}


@pytest.mark.fake_comfy(hold=True)
def test_cancel_interrupts_the_running_prompt(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    # Held: the chunk runs until the cancel ends it, however slow the machine.
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.synthesize, SynthesisInput("Speaker 1: A long chunk.", job_id="job-1"))
        wait_until(lambda: fake_comfy.running is not None, 30, "the chunk to run")
        engine.cancel("job-2")  # someone else's job: nothing happens
        assert fake_comfy.stats.interrupts == [] and not future.done()
        engine.cancel("job-1")
        with pytest.raises(JobCancelled):
            future.result(30)
    assert fake_comfy.stats.interrupts[0]["prompt_id"]
    wait_until(lambda: fake_comfy.running is None, 10, "the fake to end the interrupted prompt")
    assert fake_comfy.stats.prompts_executed == 1


@pytest.mark.fake_comfy(hold=True)
def test_a_cancelled_jobs_chunk_waiting_for_the_engine_never_starts(engine: ComfyEngine,
                                                                    fake_comfy: FakeComfy) -> None:
    # Threads sharing one engine (in-process jobs, a RunPod endpoint): the second chunk waits for the
    # first; one cancel ends both. Found against the real server: the waiting chunk ran a whole prompt.
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(engine.synthesize, SynthesisInput("Speaker 1: Running.", job_id="job-1"))
        wait_until(lambda: fake_comfy.running is not None, 30, "the first chunk to run")
        waiting = pool.submit(engine.synthesize, SynthesisInput("Speaker 1: Waiting.", job_id="job-1"))
        engine.cancel("job-1")
        for future in (running, waiting):
            with pytest.raises(JobCancelled):
                future.result(30)
    assert fake_comfy.stats.prompts_executed <= 1 and fake_comfy.pending == []
    with pytest.raises(JobCancelled):  # and any later chunk of that job
        engine.synthesize(SynthesisInput("Speaker 1: Later.", job_id="job-1"))


@pytest.mark.fake_comfy(hold=True)
def test_cancel_a_chunk_still_in_the_queue(comfy_settings: Settings, fake_comfy: FakeComfy) -> None:
    first, second = (ComfyEngine(model("vibevoice-large"), comfy_settings) for _ in range(2))
    try:
        with ThreadPoolExecutor(2) as pool:
            # Held: the first chunk keeps ComfyUI busy until it is cancelled, so the second stays queued.
            busy = pool.submit(first.synthesize, SynthesisInput("Speaker 1: Busy.", job_id="a"))
            wait_until(lambda: fake_comfy.running is not None, 30, "the first chunk to run")
            waiting = pool.submit(second.synthesize, SynthesisInput("Speaker 1: Waiting.", job_id="b"))
            wait_until(lambda: fake_comfy.pending, 30, "the second chunk to queue")
            second.cancel("b")
            with pytest.raises(JobCancelled):
                waiting.result(30)
            assert fake_comfy.pending == []
            first.cancel("a")
            with pytest.raises(JobCancelled):
                busy.result(30)
    finally:
        first.close()
        second.close()


@pytest.mark.fake_comfy(hold=True)
def test_restart_mid_chunk_is_retryable_and_the_retry_succeeds(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.synthesize, SynthesisInput("Speaker 1: Interrupted by a restart.", job_id="r"))
        wait_until(lambda: fake_comfy.running is not None, 30, "the chunk to run")  # held: still running
        fake_comfy.restart(down_seconds=0.2)
        with pytest.raises(EngineUnavailable) as info:
            future.result(30)
    assert info.value.retryable
    fake_comfy.configure(hold=False)
    assert engine.synthesize(SynthesisInput("Speaker 1: Interrupted by a restart.", job_id="r")).duration > 1


def test_voices_lost_by_the_server_are_uploaded_again(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    voice = Voice(wav(220))
    engine.synthesize(SynthesisInput("Speaker 1: First.", voices={1: voice}))
    shutil.rmtree(fake_comfy.ctx.input_dir / "narrator")  # a fresh container: inputs gone
    assert engine.synthesize(SynthesisInput("Speaker 1: Second.", voices={1: voice})).duration > 0.3
    assert fake_comfy.stats.uploads.count(f"narrator/{voice.digest}.wav") == 2


def test_unreachable_server_is_retryable(fake_comfy: FakeComfy) -> None:
    settings = Settings(comfy_url=f"http://127.0.0.1:{free_port()}", comfy_timeout=2.0)
    e = ComfyEngine(model("vibevoice-large"), settings)
    with pytest.raises(EngineUnavailable):
        e.synthesize(SynthesisInput("Speaker 1: Anyone there?"))
    e.close()


def test_warm_up_waits_and_runs_one_prompt(engine: ComfyEngine, fake_comfy: FakeComfy) -> None:
    fake_comfy.restart(down_seconds=0.5, wait=False)
    engine.warm_up()
    assert fake_comfy.stats.prompts_executed == 1
    assert fake_comfy.stats.prompts[0]["5"]["inputs"]["text"].startswith("Speaker 1: ")


def _format_model(tmp_path: Path, saver: dict[str, object]) -> ModelSpec:
    wf = json.loads((ROOT / "workflows" / "vibevoice-large.json").read_text())
    wf["6"] = {"class_type": saver["class_type"], "inputs": {"audio": ["5", 0], **saver["inputs"]}}  # type: ignore[dict-item]
    (tmp_path / "fmt.json").write_text(json.dumps(wf))
    toml = (ROOT / "workflows" / "vibevoice-large.toml").read_text()
    toml = toml.replace('name = "vibevoice-large"', 'name = "fmt"').replace("vibevoice-large.json", "fmt.json")
    (tmp_path / "fmt.toml").write_text(toml)
    (tmp_path / "voices").mkdir()
    shutil.copy(ROOT / "workflows" / "voices" / "narrator-default.flac", tmp_path / "voices")
    return load_model_file(tmp_path / "fmt.toml")


@pytest.mark.parametrize(
    "saver",
    [
        {"class_type": "SaveAudioOpus", "inputs": {"filename_prefix": "narrator/op", "quality": "64k"}},
        {"class_type": "SaveAudioMP3", "inputs": {"filename_prefix": "narrator/mp", "quality": "128k"}},
        {"class_type": "PreviewAudio", "inputs": {}},
    ],
    ids=["opus", "mp3", "preview"],
)
def test_opus_and_mp3_outputs_are_decoded(saver: dict[str, object], tmp_path: Path, comfy_settings: Settings,
                                          fake_comfy: FakeComfy) -> None:
    e = ComfyEngine(_format_model(tmp_path, saver), comfy_settings)
    reference = ComfyEngine(model("vibevoice-large"), comfy_settings)
    try:
        text = "Speaker 1: The same six words each time."
        audio = e.synthesize(SynthesisInput(text))
        clip = e.render(SynthesisInput(text))
        flac = reference.synthesize(SynthesisInput(text))
    finally:
        e.close()
        reference.close()
    assert audio.sample_rate == 24000 and audio.samples.dtype == np.float32
    assert abs(audio.duration - flac.duration) < 0.1  # Opus came back at 48 kHz and was resampled
    assert float(np.abs(audio.samples).max()) > 0.1
    # To be stored, the chunk is made the FLAC every chunk is.
    info = sf.info(io.BytesIO(clip.flac))
    assert (info.format, info.channels, info.samplerate) == ("FLAC", 1, 24000)
    assert clip.seconds == pytest.approx(info.duration, abs=1e-6) and abs(clip.seconds - flac.duration) < 0.1


def test_model_without_workflow_is_a_model_error(comfy_settings: Settings) -> None:
    spec = ModelSpec.model_validate({"name": "x", "engine": "comfyui"})
    with pytest.raises(ModelError):
        ComfyEngine(spec, comfy_settings)
