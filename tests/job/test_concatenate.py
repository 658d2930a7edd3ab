"""Joining alone: staged and synthesized chunks (tone engine) joined in order, with pauses and captions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from narrator.audio import DEFAULT_PAUSES_MS, decode
from narrator.errors import ObjectNotFound
from narrator.job.concatenate import Joined, join_job
from narrator.job.store import JobStore, Manifest
from narrator.result import JobState

from .tone import RATE, RecordingStore, pitch, read, tone_pitch, tone_seconds

Run = Callable[..., tuple[Manifest, Joined]]
PLAIN = "One two three four five six. Seven eight nine ten eleven.\n\nTwelve thirteen fourteen."
SCRIPT = "Alice: Hello there friend.\nBob: Hi back to you.\nAlice: Good to see you."
CAST = {"Alice": 1, "Bob": 2}
#: Cue times are whole milliseconds; the joiner's fades and trims move a sound's edge by a few more.
EDGE = 0.012
STAMP = r"(\d\d):(\d\d):(\d\d)[.,](\d\d\d)"


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of an SRT or WebVTT text."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            found = re.fullmatch(f"{STAMP} --> {STAMP}", line)
            if found:
                g = found.groups()
                out.append((seconds(*g[:4]), seconds(*g[4:]), "\n".join(lines[i + 1 :])))
    return out


def pause_after(entry: Any) -> float:
    return (entry.pause_ms if entry.pause_ms is not None else DEFAULT_PAUSES_MS[entry.boundary]) / 1000


@pytest.mark.parametrize(
    ("request_", "order"),
    [
        pytest.param({"text": PLAIN}, None, id="sentence and paragraph pauses"),
        pytest.param({"text": PLAIN}, [2, 0, 1], id="synthesized out of order, joined in order"),
        pytest.param({"text": SCRIPT, "speakers": CAST}, None, id="speaker pauses"),
        pytest.param(
            {"text": '<speak>Hello there. <break time="1500ms"/> Bye now. <break time="250ms"/> Gone.</speak>'},
            None, id="SSML breaks",
        ),
        pytest.param(
            {"text": "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi."},
            None, id="a sentence cut between words",
        ),
    ],
)
def test_chunks_in_order_with_their_pauses(
    joined: Run, store: RecordingStore, request_: dict[str, Any], order: list[int] | None
) -> None:
    manifest, result = joined(request_, order)
    chunks = manifest.chunks
    pitches = [tone_pitch(e.text) for e in chunks]
    assert len(set(pitches)) == len(pitches), "the test needs a distinct tone per chunk"
    samples, rate = read(store.get_bytes(result.key))
    assert rate == RATE and result.duration == pytest.approx(len(samples) / rate, abs=1e-3)
    spans = cues(result.captions["vtt"])
    assert len(spans) == len(chunks)
    for (start, end, _), entry, expected in zip(spans, chunks, pitches, strict=True):
        # Each cue covers its own chunk's sound: its length, its tone.
        assert end - start == pytest.approx(tone_seconds(entry.text), abs=EDGE)
        inner = samples[round((start + EDGE) * rate) : round((end - EDGE) * rate)]
        assert pitch(inner, rate) == pytest.approx(expected, abs=3)
    for (_, end, _), (start, _, _), entry in zip(spans, spans[1:], chunks, strict=False):
        # Between two sounds: the pause the boundary (or the break) asks for, and silence.
        assert start - end == pytest.approx(pause_after(entry), abs=EDGE)
        gap = samples[round((end + EDGE) * rate) : round((start - EDGE) * rate)]
        assert gap.size == 0 or float(np.max(np.abs(gap))) < 1e-3
    # Nothing before the first sound or after the last beyond the kept edges.
    assert spans[0][0] < EDGE and result.duration - spans[-1][1] < EDGE


def test_pauses_between_chunks_are_the_boundaries(joined: Run) -> None:
    """The same words cut differently sound differently: a paragraph pause is longer than a sentence's."""
    _, sentences = joined({"text": "One two three four five six. Seven eight nine ten eleven."})
    _, paragraphs = joined({"text": "One two three four five six.\n\nSeven eight nine ten eleven."})
    difference = (DEFAULT_PAUSES_MS["paragraph"] - DEFAULT_PAUSES_MS["sentence"]) / 1000
    assert paragraphs.duration - sentences.duration == pytest.approx(difference, abs=0.005)


def test_captions_follow_the_chunks(joined: Run, store: RecordingStore) -> None:
    manifest, result = joined({"text": "Fish & chips cost $5 here.\n\nAnd that is < a lot."})
    job = JobStore(store, manifest.job_id)
    srt, vtt = result.captions["srt"], result.captions["vtt"]
    # The source text, not what the engine was given (no "Speaker 1:", numbers not read out).
    assert [c[2] for c in cues(srt)] == ["Fish & chips cost $5 here.", "And that is < a lot."]
    assert [c[2] for c in cues(vtt)] == ["Fish &amp; chips cost $5 here.", "And that is &lt; a lot."]
    assert [c[:2] for c in cues(srt)] == [c[:2] for c in cues(vtt)]
    assert vtt.startswith("WEBVTT\n") and srt.startswith("1\n00:00:00,0")
    assert re.search(r"^2\n", srt, re.M)
    # Stored beside the joined audio, as returned.
    for ext in ("srt", "vtt"):
        assert store.get_bytes(job.work_captions_key(ext)).decode() == result.captions[ext]


def test_the_joined_marker(joined: Run, store: RecordingStore) -> None:
    manifest, result = joined({"text": PLAIN, "output": {"format": "flac"}})
    job = JobStore(store, manifest.job_id)
    assert result.key == job.joined_key("flac")
    assert job.state() is JobState.UPLOADING
    assert not store.exists(job.output_key("flac"))  # publishing is the next step's


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 24000), ("flac", 8000), ("mp3", 22050), ("opus", 48000)])
def test_the_output_format_and_rate(joined: Run, store: RecordingStore, fmt: str, rate: int) -> None:
    _, result = joined({"text": PLAIN, "output": {"format": fmt, "sample_rate": rate}})
    assert result.key.endswith(f".{fmt}")
    out = decode(store.get_bytes(result.key), field="output")
    assert out.sample_rate == rate and out.duration == pytest.approx(result.duration, abs=0.08)


def test_a_missing_chunk_stops_the_join(staged: Callable[..., Manifest], store: RecordingStore) -> None:
    manifest = staged({"text": PLAIN})
    with pytest.raises(ObjectNotFound):
        join_job(manifest, store)
    job = JobStore(store, manifest.job_id)
    assert job.state() is JobState.SYNTHESIZING and not store.exists(job.joined_key("wav"))
