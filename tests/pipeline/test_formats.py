"""Output formats and rates through the in-process pipeline (the embedded default)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import soundfile as sf

from narrator import jobs
from narrator.settings import Settings
from narrator.storage import open_store

TEXT = "Every format is encoded while the chunks are joined. No system encoder is needed."


@pytest.mark.parametrize(
    ("fmt", "rate", "expected_rate"),
    [("wav", None, 22050), ("flac", 16000, 16000), ("mp3", 24000, 24000), ("opus", None, 24000)],
)
def test_formats(tmp_path: Path, fmt: str, rate: int | None, expected_rate: int) -> None:
    settings = Settings(storage_url=tmp_path.as_uri())
    output = {"format": fmt, **({"sample_rate": rate} if rate else {})}
    result = jobs.submit({"text": TEXT, "output": output}, settings).wait(timeout=120)
    data = open_store(settings).get_bytes(result.output_key)
    info = sf.info(io.BytesIO(data))
    assert result.format == fmt and result.output_key.endswith(f".{fmt}")
    assert info.samplerate in (expected_rate, 48000 if fmt == "opus" else expected_rate)
    assert abs(info.duration - result.duration_seconds) < 0.1
    assert result.duration_seconds > 2.0
