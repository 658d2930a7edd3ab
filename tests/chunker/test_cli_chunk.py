"""``narrator chunk``: the table, the JSON, models, stdin and errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from narrator.cli.chunk import register
from narrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MODEL = """\
name = "duo"
engine = "embedded"
speakers = 2
speaker_format = "Speaker {n}: {text}"
max_chunk_chars = 60
min_chunk_chars = 10
"""


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="narrator")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args, settings))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "duo.toml").write_text(MODEL, encoding="utf-8")
    return Settings(workflows_dir=workflows, default_model="duo")


def test_json_has_offsets_into_the_file(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    text = "\ufeffCafé at 5 p.m. was nice. We stayed for hours and hours and hours.\n\nSpeaker 2: Bye now, friend."
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8")
    assert run(["chunk", str(path), "--json"], settings) == 0
    rows = json.loads(capsys.readouterr().out)
    as_read = text.removeprefix("\ufeff")
    assert [as_read[r["start"] : r["end"]] for r in rows] == [r["text"] for r in rows]
    assert [(r["text"], r["boundary"], r["speaker"]) for r in rows] == [
        ("Café at 5 p.m. was nice.", "sentence", 1),
        ("We stayed for hours and hours and hours.", "speaker", 1),
        ("Bye now, friend.", "end", 2),
    ]
    assert rows[0]["spoken"] == "Café at five P M was nice."
    assert rows[0]["words"] == 7 and rows[0]["seconds"] == pytest.approx(2.8)


def test_table(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.txt"
    path.write_text("One two three four five six. " * 4, encoding="utf-8")
    assert run(["chunk", str(path), "--max-chars", "40"], settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#", "words", "boundary", "speaker", "secs", "text"]
    assert lines[1].split()[:5] == ["0", "6", "sentence", "1", "2.4"]
    assert lines[-1].startswith("4 chunks, 24 words, about 0 min 10 s") and "model duo, at most 40" in lines[-1]


def test_no_normalize_and_speaker_names(tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.txt"
    path.write_text("Alice: It costs $5.\nBob: Dr. Who?", encoding="utf-8")
    argv = ["chunk", str(path), "--json", "--no-normalize", "--speaker", "Alice=1", "--speaker", "Bob=2"]
    assert run(argv, settings) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["speaker"], r["spoken"]) for r in rows] == [(1, "It costs $5."), (2, "Dr. Who?")]


def test_the_default_model_of_the_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.txt"
    path.write_text("Hello there. " * 100, encoding="utf-8")
    assert run(["chunk", str(path), "--json"], Settings()) == 0
    rows = json.loads(capsys.readouterr().out)
    assert max(r["end"] - r["start"] for r in rows) <= 600  # workflows/local.toml: max_chunk_chars = 600


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["chunk", "{missing}"], "cannot read"),
        (["chunk", "{file}", "--model", "nope"], "unknown model 'nope' (known: duo)"),
        (["chunk", "{script}"], "at most 2 speakers"),
        (["chunk", "{file}", "--speaker", "Alice"], "give NAME=N"),
        (["chunk", "{latin1}"], "is not UTF-8 text (byte 3)"),
    ],
)
def test_errors_exit_2_with_a_message(
    argv: list[str], message: str, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f.txt").write_text("Hi.", encoding="utf-8")
    (tmp_path / "s.txt").write_text("Speaker 3: Hi.", encoding="utf-8")
    (tmp_path / "l.txt").write_bytes("Caf\xe9".encode("latin-1"))
    names = {
        "missing": tmp_path / "nope.txt",
        "file": tmp_path / "f.txt",
        "script": tmp_path / "s.txt",
        "latin1": tmp_path / "l.txt",
    }
    assert run([a.format(**names) for a in argv], settings) == 2
    assert message in capsys.readouterr().err


def test_stdin(settings: Settings) -> None:
    code = (
        "import sys, argparse; from narrator.cli.chunk import register; from narrator.settings import Settings\n"
        "p = argparse.ArgumentParser(); register(p.add_subparsers())\n"
        "a = p.parse_args(); sys.exit(a.func(a, Settings.from_env()))"
    )
    env = {**os.environ, "NARRATOR_WORKFLOWS_DIR": str(settings.workflows_dir), "NARRATOR_DEFAULT_MODEL": "duo"}
    proc = subprocess.run(
        [sys.executable, "-c", code, "chunk", "-", "--json"],
        input=b"Hello from standard input. It works.",
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    rows = json.loads(proc.stdout)
    assert [r["text"] for r in rows] == ["Hello from standard input. It works."]


def test_the_estimate_is_the_models_own_rate_and_close_to_its_speech(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded model speaks faster than the common 150 words a minute: the estimate says so, and holds."""
    from narrator import jobs
    from narrator.settings import PROJECT_WORKFLOWS

    text = "\n\n".join((ROOT / "examples" / "tell-tale-heart.txt").read_text().split("\n\n")[1:5])
    source = tmp_path / "excerpt.txt"
    source.write_text(text)
    settings = Settings(workflows_dir=PROJECT_WORKFLOWS, default_model="local", storage_url=(tmp_path / "s").as_uri())
    assert run(["chunk", "--json", str(source)], settings) == 0
    estimate = sum(row["seconds"] for row in json.loads(capsys.readouterr().out))
    assert run(["chunk", str(source)], settings) == 0
    assert "at 211 words a minute (model local" in capsys.readouterr().out

    handle = jobs.submit({"text": text}, settings)
    handle.wait(timeout=120)
    speech = handle.progress().audio_seconds  # the chunks' own audio, before the joins' pauses
    assert abs(estimate - speech) / speech < 0.15, (estimate, speech)
