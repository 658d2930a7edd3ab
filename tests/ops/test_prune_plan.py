"""The ComfyUI folder pruner's planner and the command's parsers, from tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narrator.cli.gc import human_bytes, parse_duration, parse_size
from narrator.errors import InvalidRequest
from narrator.ops.prune import FileEntry, Policy, in_use, plan, referenced

NOW = 1_000_000.0
H = 3600.0


def f(name: str, size: int, age_hours: float) -> FileEntry:
    return FileEntry(f"/comfy/output/narrator/{name}", size, NOW - age_hours * H)


FILES = [f("old", 100, 48), f("mid", 100, 10), f("new", 100, 2), f("fresh", 100, 0.01)]


@pytest.mark.parametrize(
    ("case", "policy", "protected", "deleted", "over"),
    [
        ("age only", Policy(max_age=24 * H, max_bytes=None, min_age=720), set(), ["old"], False),
        ("size only: oldest first until under", Policy(None, 200, 720), set(), ["old", "mid"], False),
        ("size already met", Policy(None, 400, 720), set(), [], False),
        ("age then size", Policy(24 * H, 150, 720), set(), ["old", "mid", "new"], False),
        ("never younger than min_age, even over budget", Policy(None, 0, 720), set(), ["old", "mid", "new"], True),
        ("min_age above max_age wins", Policy(1 * H, None, 12 * H), set(), ["old"], False),
        ("protected files stay and still count", Policy(None, 200, 720), {"old"}, ["mid", "new"], False),
        ("protected past max_age stays", Policy(1 * H, None, 720), {"mid"}, ["old", "new"], False),
        ("nothing to do", Policy(100 * H, None, 720), set(), [], False),
    ],
)
def test_plan(case: str, policy: Policy, protected: set[str], deleted: list[str], over: bool) -> None:
    paths = frozenset(f"/comfy/output/narrator/{n}" for n in protected)
    chosen = plan(list(reversed(FILES)), NOW, policy, paths)
    assert [e.path.rsplit("/", 1)[-1] for e in chosen.delete] == deleted, case
    assert chosen.over_budget == over, case
    assert chosen.kept == len(FILES) - len(deleted)
    assert chosen.kept_bytes + chosen.freed_bytes == 400


def test_ties_in_time_break_by_path() -> None:
    same = [FileEntry("/d/b", 10, NOW - 5 * H), FileEntry("/d/a", 10, NOW - 5 * H)]
    assert [e.path for e in plan(same, NOW, Policy(None, 10, 0)).delete] == ["/d/a"]


QUEUE = {
    "queue_running": [[0, "p1", {"3": {"class_type": "LoadAudio", "inputs": {"audio": "narrator/aa.wav"}}}, {}, ["7"]]],
    "queue_pending": [[1, "p2", {"3": {"inputs": {"audio": "narrator/bb.wav", "seed": 4}}}, {"client_id": "c"}, []]],
}


def test_referenced_walks_every_prompt_in_the_queue() -> None:
    names = referenced(QUEUE)
    assert {"narrator/aa.wav", "narrator/bb.wav", "LoadAudio", "p1", "p2"} <= names
    assert referenced({"queue_running": [], "queue_pending": []}) == frozenset()


@pytest.mark.parametrize(
    ("path", "hit"),
    [
        ("/comfyui/input/narrator/aa.wav", True),
        ("/comfyui/input/narrator/bb.wav", True),
        ("/comfyui/input/narrator/cc.wav", False),
        ("/comfyui/input/other/aa.wav", False),  # same file name, another subfolder
        ("/comfyui/input/narrator/xaa.wav", False),  # a tail must match whole path parts
    ],
)
def test_in_use_matches_whole_path_tails(path: str, hit: bool) -> None:
    files = [FileEntry(path, 1, NOW)]
    assert bool(in_use(files, referenced(QUEUE))) == hit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 7 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("90s", 90), ("90", 90), ("1w", 7 * 86400),
     ("1.5h", 5400), (" 2D ", 2 * 86400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, "--older-than") == seconds


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "d", "1y", "7d2h"])
def test_bad_duration_names_the_option(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^--older-than: .* is not a duration"):
        parse_duration(text, "--older-than")


@pytest.mark.parametrize(
    ("text", "size"),
    [("20G", 20 << 30), ("500M", 500 << 20), ("1024", 1024), ("1.5GiB", 3 << 29), ("4kb", 4096), ("2T", 2 << 40)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text, "--max-bytes") == size


@pytest.mark.parametrize("text", ["", "lots", "-5G", "5X", "G"])
def test_bad_size_names_the_option(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^--max-bytes: "):
        parse_size(text, "--max-bytes")


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 30, "5.0 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_a_real_servers_queue_names_its_prompts_inputs() -> None:
    """The /queue answer a real ComfyUI sent (recorded in tests/comfy/traces), not the fake's."""
    trace = json.loads((Path(__file__).parents[1] / "comfy" / "traces" / "interrupt.json").read_text())
    answer = next(e["GET /queue"] for e in trace["log"] if isinstance(e, dict) and "GET /queue" in e)
    assert answer["queue_running"] and answer["queue_pending"]
    files = [FileEntry("/comfyui/input/test_tone.wav", 1, NOW), FileEntry("/comfyui/input/other.wav", 1, NOW)]
    assert in_use(files, referenced(answer)) == {"/comfyui/input/test_tone.wav"}
