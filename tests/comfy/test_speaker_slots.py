"""Proof with the real VibeVoice processor: every line's speaker label has a voice prompt, in that speaker's voice.

narrator's side is real: a request is admitted and staged, each chunk goes through
``synthesize_chunk`` and the ComfyEngine to the fake ComfyUI, and the prompt it posted
is read back (the text input, and which uploaded voice each ``speaker_N_voice`` slot
loads). The wildminder node's own step (commit d04665d073dd9a587e682422deba5927e31ccac4)
is re-implemented below; then the real processor from the PyPI ``vibevoice`` package
(Microsoft's code, MIT) turns the node's script and voices into the model's input, and
we read the voice prompt labels and the text labels back out of its token ids.

The pack vendors the processor (vibevoice/processor/vibevoice_processor.py at d04665d).
Against PyPI vibevoice 0.0.1 it differs only in ``from_pretrained``, where the PyPI copy
can also fetch preprocessor_config.json from a hub; ``__call__``, ``_process_single``,
``_create_voice_prompt`` and ``_parse_script`` are the same line for line (the PyPI files
have CRLF line ends), and so are vibevoice_tokenizer_processor.py and
modular_vibevoice_text_tokenizer.py. So the processor here is the one the node runs.
"""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from narrator.chunker import slot_text, speaker_slots
from narrator.engines.base import SynthesisInput, Voice
from narrator.engines.comfyui import ComfyEngine
from narrator.job.admission import admit
from narrator.job.stage import stage
from narrator.job.synthesize import synthesize_chunk
from narrator.models import ModelRegistry
from narrator.settings import Settings
from narrator.storage.file import FileStore
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT

INSTALL = "make test installs it (the `processor` extra, torch==2.13.0, pip install --no-deps vibevoice==0.0.1)"
pytest.importorskip("torch", reason=f"the processor needs torch; {INSTALL}")
tokenizers = pytest.importorskip("tokenizers", reason=f"the test tokenizer needs tokenizers; {INSTALL}")
processing = pytest.importorskip("vibevoice.processor.vibevoice_processor", reason=f"needs vibevoice; {INSTALL}")
audio_processing = pytest.importorskip("vibevoice.processor.vibevoice_tokenizer_processor", reason=INSTALL)
text_tokenizing = pytest.importorskip("vibevoice.modular.modular_vibevoice_text_tokenizer", reason=INSTALL)

RATE = 24000
PITCH = {1: 150.0, 2: 230.0, 3: 310.0, 4: 390.0}
"""Each job speaker's voice is a pure tone of its own: the processor's speech tensors are matched back by pitch."""
REGISTRY = ModelRegistry.from_dir(ROOT / "workflows")
MODEL = REGISTRY.get("vibevoice-large")


def tone(speaker: int) -> bytes:
    t = np.arange(2 * RATE) / RATE
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * PITCH[speaker] * t)).astype(np.float32), RATE, format="WAV")
    return buf.getvalue()


# -- the node's step: wildminder/ComfyUI-VibeVoice at d04665d073dd9a587e682422deba5927e31ccac4 ---------------


def parse_script_1_based(script: str) -> tuple[list[tuple[int, str]], list[int]]:
    """modules/utils.py:32-56, as written there: 0-based ids per line, and the 1-based ids present, sorted."""
    parsed_lines, speaker_ids = [], []
    for raw in script.strip().split("\n"):
        if not (line := raw.strip()):
            continue
        match = re.match(r"^Speaker\s+(\d+)\s*:\s*(.*)$", line, re.IGNORECASE)
        if match:
            speaker_id = int(match.group(1))
            if speaker_id < 1:
                continue
            parsed_lines.append((speaker_id - 1, " " + match.group(2).strip()))
            if speaker_id not in speaker_ids:
                speaker_ids.append(speaker_id)
    return parsed_lines, sorted(set(speaker_ids))


def node_step(text: str, slots: Mapping[int, np.ndarray]) -> tuple[str, list[np.ndarray]]:
    """vibevoice_nodes.py:114-125: the script written again, and the voices of the ids present, in sorted order."""
    parsed, ids = parse_script_1_based(text)
    full_script = "\n".join(f"Speaker {spk + 1}: {txt}" for spk, txt in parsed)
    missing = [sid for sid in ids if sid not in slots]
    if missing:
        raise ValueError(f"Script requires voices for Speakers {missing}, but they were not provided.")
    return full_script, [slots[sid] for sid in ids]


def posted(prompt: Mapping[str, Any], input_dir: Path) -> tuple[str, dict[int, np.ndarray]]:
    """The TTS node's text and, per ``speaker_N_voice`` slot, the audio its LoadAudio node loads (mono, 24 kHz)."""
    tts = next(node for node in prompt.values() if node["class_type"] == "VibeVoiceTTS")
    slots = {}
    for n in range(1, 5):
        link = tts["inputs"].get(f"speaker_{n}_voice")
        if link is not None:
            name = prompt[link[0]]["inputs"]["audio"]
            samples, rate = sf.read(str(input_dir / name), dtype="float32", always_2d=True)
            assert rate == RATE  # so preprocess_comfy_audio (utils.py:58-98) only takes the mean of the channels
            slots[n] = samples.mean(axis=1)
    return str(tts["inputs"]["text"]), slots


# -- the real processor ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """VibeVoiceProcessor with the defaults of its from_pretrained, on a byte-level BPE with Qwen's special tokens."""
    alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    bpe.add_special_tokens(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
         "<|image_pad|>"]
    )
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    bpe.save(str(path))
    tokenizer = text_tokenizing.VibeVoiceTextTokenizerFast(tokenizer_file=str(path))
    audio = audio_processing.VibeVoiceTokenizerProcessor()
    return processing.VibeVoiceProcessor(tokenizer=tokenizer, audio_processor=audio)


@dataclass(frozen=True)
class Seen:
    """What the model is given: voice prompt label -> whose voice it is (None: no job speaker's), and text lines."""

    prompts: dict[int, int | None]
    lines: list[tuple[int, str]]


def whose_voice(samples: np.ndarray) -> int | None:
    """The job speaker whose tone this is: its strongest frequency, and nearly all the energy around it."""
    power = np.abs(np.fft.rfft(samples)) ** 2
    peak, hz_per_bin = int(np.argmax(power)), RATE / len(samples)
    width = int(np.ceil(10 / hz_per_bin))
    share = power[max(0, peak - width) : peak + width + 1].sum() / power.sum()
    near = [s for s, f in PITCH.items() if abs(peak * hz_per_bin - f) < 3]
    return near[0] if near and share > 0.9 else None


def model_input(processor: Any, text: str, slots: Mapping[int, np.ndarray]) -> Seen:
    full_script, voice_samples = node_step(text, slots)
    # As the node calls it (vibevoice_nodes.py:130-133).
    batch = processor(
        text=[full_script], voice_samples=[voice_samples], padding=True, return_tensors="pt", return_attention_mask=True
    )
    tokens = processor.tokenizer.decode(batch["input_ids"][0].tolist())
    voice_part, rest = tokens.split(" Voice input:\n", 1)[1].split(" Text input:\n", 1)
    labels = [int(n) for n in re.findall(r" Speaker (\d+):<\|vision_start\|>", voice_part)]
    speech = batch["speech_tensors"]
    assert len(labels) == len(speech) == len(voice_samples)
    prompts = {label: whose_voice(row.numpy()) for label, row in zip(labels, speech, strict=True)}
    text_part = rest.split(" Speech output:\n", 1)[0]
    lines = [(int(m[1]), m[2].strip()) for m in re.finditer(r"^ Speaker (\d+):(.*)$", text_part, re.MULTILINE)]
    return Seen(prompts, lines)


def mismatches(seen: Seen, speakers: Sequence[int]) -> list[str]:
    """Lines whose label has no voice prompt, or whose voice prompt is not their speaker's voice."""
    problems = [] if len(seen.lines) == len(speakers) else [f"{len(seen.lines)} lines, not {len(speakers)}"]
    for (label, text), speaker in zip(seen.lines, speakers, strict=False):
        if label not in seen.prompts:
            problems.append(f"{text!r} (speaker {speaker}) is Speaker {label}; voice prompts: {sorted(seen.prompts)}")
        elif seen.prompts[label] != speaker:
            problems.append(f"{text!r} (speaker {speaker}) is Speaker {label}: voice of {seen.prompts[label]}")
    return problems


# -- the tests -------------------------------------------------------------------------------------------

NAMES = {1: "Ada", 2: "Bram", 3: "Cleo", 4: "Dov"}


@pytest.fixture
def engine(comfy_settings: Settings) -> Any:
    assert MODEL is not None
    e = ComfyEngine(MODEL, comfy_settings)
    yield e
    e.close()


@pytest.mark.parametrize(
    "lines",
    [
        [(1, "")], [(2, "")], [(3, "")], [(4, "")],  # each speaker alone in a job
        [(1, ""), (2, "")], [(1, ""), (2, ""), (3, "")], [(1, ""), (2, ""), (3, ""), (4, "")],
        [(1, ""), (3, "")], [(2, ""), (4, "")], [(4, ""), (2, ""), (3, "")], [(3, ""), (1, ""), (3, "")],
        [(1, "We both say this."), (2, "We both say this.")],  # two speakers, one sentence: no shared cache
    ],
    ids=lambda lines: "-".join(str(s) for s, _ in lines) + ("-same" if lines[0][1] else ""),
)
def test_every_chunk_narrator_sends_is_spoken_in_its_speakers_voice(
    lines: list[tuple[int, str]], processor: Any, engine: ComfyEngine, comfy_settings: Settings,
    fake_comfy: FakeComfy, tmp_path: Path,
) -> None:
    script = "\n".join(
        f"Speaker {s}: {text or f'My name is {NAMES[s]}, and line {i} is mine.'}" for i, (s, text) in enumerate(lines)
    )
    voices = {str(n): base64.b64encode(tone(n)).decode() for n in PITCH}
    admitted = admit({"text": script, "model": "vibevoice-large", "voices": voices}, comfy_settings, REGISTRY)
    store, job_id = FileStore(tmp_path / "store"), uuid.uuid4().hex
    manifest = stage(job_id, admitted, comfy_settings, store)
    for index in range(len(manifest.chunks)):
        assert not synthesize_chunk(job_id, index, manifest, store, lambda: engine).cached
    prompts = fake_comfy.stats.prompts
    assert len(prompts) == len(lines)  # one chunk per turn, in order, none served from another's cache
    for prompt, (speaker, _) in zip(prompts, lines, strict=True):
        text, slots = posted(prompt, fake_comfy.ctx.input_dir)
        seen = model_input(processor, text, slots)
        assert mismatches(seen, [speaker]) == []
        assert seen.prompts == {0: speaker}  # one voice prompt: this speaker's


@pytest.mark.parametrize(
    "speakers",
    [(1, 2), (2, 1), (1, 3), (2, 4), (2, 3, 4), (4, 2, 3), (1, 2, 3, 4), (4, 3, 2, 1), (3, 1, 3)],
    ids=lambda s: "-".join(map(str, s)),
)
def test_chunks_with_several_speakers_bind_each_slot_to_its_speaker(
    speakers: tuple[int, ...], processor: Any, engine: ComfyEngine, fake_comfy: FakeComfy
) -> None:
    # narrator's chunks have one speaker today; the slot scheme and binding already hold for several.
    slots = speaker_slots([(s, f"{NAMES[s]} speaks line {i}.") for i, s in enumerate(speakers)])
    voices = {n: Voice(tone(n)) for n in PITCH}
    assert MODEL is not None
    engine.synthesize(SynthesisInput(slot_text(slots, MODEL.speaker_format), voices, speakers=slots.speakers))
    seen = model_input(processor, *posted(fake_comfy.stats.prompts[-1], fake_comfy.ctx.input_dir))
    assert mismatches(seen, speakers) == []
    assert sorted(seen.prompts.values()) == sorted(set(speakers))  # each speaker's voice once, no other


@pytest.mark.parametrize(
    ("speakers", "broken"),
    [((2,), True), ((3,), True), ((4,), True), ((2, 3), True), ((1, 3), True), ((2, 4), True),
     ((1,), False), ((1, 2), False), ((1, 2, 3), False)],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else ("broken" if v else "works"),
)
def test_the_old_numbering_gave_lines_no_voice_of_their_own(
    speakers: tuple[int, ...], broken: bool, processor: Any, engine: ComfyEngine, fake_comfy: FakeComfy
) -> None:
    # The old scheme: the text named job speakers, and voice slot n carried job speaker n's voice.
    text = "\n".join(f"Speaker {s}: {NAMES[s]} speaks." for s in speakers)
    engine.synthesize(SynthesisInput(text, {n: Voice(tone(n)) for n in PITCH}, speakers=(1, 2, 3, 4)))
    seen = model_input(processor, *posted(fake_comfy.stats.prompts[-1], fake_comfy.ctx.input_dir))
    assert bool(mismatches(seen, speakers)) is broken  # only the sets 1..k came through
    if speakers == (2,):
        # Issue 11: speaker 2's voice is prompted as Speaker 0, but its line is read as Speaker 1.
        assert seen.prompts == {0: 2} and [label for label, _ in seen.lines] == [1]
