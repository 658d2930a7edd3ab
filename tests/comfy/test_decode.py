"""What ComfyUI writes (FLAC, WAV, MP3, Ogg/Opus; mono or stereo) decodes for the engine."""

from __future__ import annotations

import io
import subprocess
import sys

import lameenc
import numpy as np
import pytest
import soundfile as sf

from narrator.audio import decode
from tests.support.comfy import ROOT

RATE = 24000


def tone(channels: int = 1, rate: int = RATE) -> np.ndarray:
    t = np.arange(rate) / rate
    mono = (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    return np.stack([mono] * channels, axis=1)


def encode(fmt: str, channels: int) -> tuple[bytes, int]:
    """The four formats as ComfyUI's savers write them (Opus at 48 kHz, like SaveAudioOpus)."""
    buf = io.BytesIO()
    if fmt == "mp3":
        enc = lameenc.Encoder()
        enc.set_bit_rate(128)
        enc.set_in_sample_rate(RATE)
        enc.set_channels(channels)
        return bytes(enc.encode((tone(channels) * 32767).astype("<i2").tobytes()) + enc.flush()), RATE
    if fmt == "opus":
        sf.write(buf, tone(channels, 48000), 48000, format="OGG", subtype="OPUS")
        return buf.getvalue(), 48000
    sf.write(buf, tone(channels), RATE, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue(), RATE


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3", "opus"])
@pytest.mark.parametrize("channels", [1, 2])
def test_every_comfyui_format_decodes_to_mono_float32(fmt: str, channels: int) -> None:
    data, rate = encode(fmt, channels)
    audio = decode(data, field=f"x.{fmt}")
    assert audio.sample_rate == rate and audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - 1.0) < 0.08  # MP3 pads a little
    assert 0.3 < float(np.abs(audio.samples).max()) <= 1.0


def test_client_and_engine_stay_free_of_celery() -> None:
    code = "import sys, narrator.comfy, narrator.engines.comfyui, narrator.cli.models; print('celery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
