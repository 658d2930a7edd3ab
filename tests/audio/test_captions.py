import pytest

from narrator.audio import Cue, srt, webvtt

CASES = [
    (
        "two cues",
        [(0.0, 1.5, "Hello."), (2.25, 3.0006, "World!")],
        "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n00:00:02,250 --> 00:00:03,001\nWorld!\n",
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n\n00:00:02.250 --> 00:00:03.001\nWorld!\n",
    ),
    (
        "hours and blank lines",
        [Cue(3725.0789, 3726.1, "  A\n\n\nparagraph  break  ")],
        "1\n01:02:05,079 --> 01:02:06,100\nA\nparagraph break\n",
        "WEBVTT\n\n01:02:05.079 --> 01:02:06.100\nA\nparagraph break\n",
    ),
    (
        "markup is escaped in vtt only",
        [(0.0, 1.0, "a < b & c --> d")],
        "1\n00:00:00,000 --> 00:00:01,000\na < b & c --> d\n",
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na &lt; b &amp; c --&gt; d\n",
    ),
    (
        "empty text skipped, numbering continues",
        [(0.0, 1.0, " "), (1.0, 0.5, "Backwards end"), (-0.2, 0.1, "Negative start")],
        "1\n00:00:01,000 --> 00:00:01,000\nBackwards end\n\n2\n00:00:00,000 --> 00:00:00,100\nNegative start\n",
        "WEBVTT\n\n00:00:01.000 --> 00:00:01.000\nBackwards end\n\n00:00:00.000 --> 00:00:00.100\nNegative start\n",
    ),
    ("no cues", [], "", "WEBVTT\n"),
]


@pytest.mark.parametrize(("name", "cues", "expected_srt", "expected_vtt"), CASES, ids=[c[0] for c in CASES])
def test_captions(name: str, cues: list, expected_srt: str, expected_vtt: str) -> None:
    assert srt(cues) == expected_srt
    assert webvtt(cues) == expected_vtt
