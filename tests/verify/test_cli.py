"""``narrator speak --verify`` and ``narrator verify`` as a user types them, on the embedded voice.

In-process jobs check each chunk where it was synthesized; ``status`` then reports the
check figures, and ``verify`` judges one file: exit 0 for a pass, 3 for a fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.test_cli_traps import first_line, narrator

TEXT = ("The old man had lived alone in the house at the end of the lane for nearly forty years. "
        "Every morning she walked down to the harbour to watch the fishing boats come in.")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("verify-cli")
    store, out = folder / "store", folder / "out.wav"
    run = narrator(store, "speak", TEXT, "--verify", "retry", "-o", str(out))
    assert run.returncode == 0, run.stderr
    (job_id,) = [p.name for p in (store / "jobs").iterdir()]
    return store, out, job_id


def test_speak_with_verify_reports_the_checks_in_status(spoken: tuple[Path, Path, str]) -> None:
    store, _, job_id = spoken
    run = narrator(store, "status", job_id)
    shown = json.loads(run.stdout)
    assert shown["state"] == "SUCCESS" and shown["chunks_checked"] == shown["chunks_total"] >= 1
    v = shown["verification"]
    assert (v["mode"], v["recogniser"], v["checked"], v["failing"]) == ("retry", "pocketsphinx", 1, [])
    assert v["passed"] == 1 and v["attempts"] >= 1


def test_the_job_gets_word_and_phrase_captions(spoken: tuple[Path, Path, str]) -> None:
    store, _, job_id = spoken
    words = (store / "jobs" / job_id / "output.words.srt").read_text()
    assert words.count(" --> ") == len(TEXT.split()) and "harbour" in words
    phrases = (store / "jobs" / job_id / "output.phrases.vtt").read_text()
    assert phrases.startswith("WEBVTT") and 4 <= phrases.count(" --> ") < len(TEXT.split())


def test_verify_passes_the_file_that_says_the_text(spoken: tuple[Path, Path, str]) -> None:
    store, out, _ = spoken
    run = narrator(store, "verify", str(out), TEXT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("pass (score ") and "; pocketsphinx)" in run.stdout.splitlines()[0]


def test_verify_fails_a_file_against_another_text(spoken: tuple[Path, Path, str]) -> None:
    store, out, _ = spoken
    run = narrator(store, "verify", str(out), "A small dog followed them all the way home from the market.")
    assert run.returncode == 3
    assert run.stdout.startswith("FAIL: ")


def test_verify_json_gives_the_whole_check(spoken: tuple[Path, Path, str]) -> None:
    store, out, _ = spoken
    run = narrator(store, "verify", str(out), TEXT, "--json")
    check = json.loads(run.stdout)
    assert check["passed"] is True and len(check["words"]) == len(TEXT.split())


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["missing.wav", "Hello."], "narrator: invalid request: audio: no such file: missing.wav"),
        (["{out}"], "narrator: invalid request: text: give the text the audio should say (or --file)"),
    ],
)
def test_verify_bad_input_names_the_field(spoken: tuple[Path, Path, str], args: list[str], line: str) -> None:
    store, out, _ = spoken
    run = narrator(store, "verify", *[a.format(out=out) for a in args])
    assert run.returncode == 2 and first_line(run) == line
