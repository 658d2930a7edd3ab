"""The verify steps of the job layer: attempts, the next step, the mode, keeping the best."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from narrator.errors import ConfigurationError
from narrator.job.stage import verify_mode
from narrator.job.store import JobStore, Manifest, cache_key
from narrator.job.verify import attempt_of, keep, next_attempt
from narrator.models import ModelSpec
from narrator.settings import Settings
from narrator.verify import ChunkCheck
from tests.job.conftest import RecordingStore


@pytest.fixture
def manifest(staged: Callable[..., Manifest]) -> Manifest:
    return staged({"text": "One sentence to say. Another one after it."})


def test_a_later_attempt_takes_the_next_seed_and_its_own_cache_entry(manifest: Manifest) -> None:
    seeded = manifest.model_copy(update={"params": {"seed": 42, "speed": 1.0}})
    entry = seeded.chunks[0]
    attempts = [attempt_of(seeded, entry, n) for n in range(3)]
    assert [p["seed"] for p, _ in attempts] == [42, 43, 44]
    assert attempts[0][1] == entry.digest
    assert len({d for _, d in attempts}) == 3
    top = manifest.model_copy(update={"params": {"seed": 2**32 - 1}})
    assert attempt_of(top, top.chunks[0], 1)[0]["seed"] == 0  # wraps inside the seed's range


def test_a_model_without_a_seed_samples_anew_under_a_new_digest(manifest: Manifest) -> None:
    plain = manifest.model_copy(update={"params": {"speed": 1.0}})
    params, digest = attempt_of(plain, plain.chunks[0], 1)
    assert params == {"speed": 1.0} and digest != plain.chunks[0].digest


@pytest.mark.parametrize(
    ("mode", "limit", "attempt", "passed", "expected"),
    [
        ("retry", 3, 0, False, 1),
        ("retry", 3, 1, False, 2),
        ("retry", 3, 2, False, None),  # out of attempts: keep the best
        ("retry", 3, 0, True, None),
        ("report", 1, 0, False, None),
        ("retry", 1, 0, False, None),
    ],
)
def test_next_attempt(manifest: Manifest, mode: str, limit: int, attempt: int, passed: bool,
                      expected: int | None) -> None:
    m = manifest.model_copy(update={"verify": mode, "verify_attempts": limit})
    assert next_attempt(m, attempt, ChunkCheck(passed=passed)) == expected


@pytest.mark.parametrize(
    ("asked", "deployed", "model", "expected"),
    [(None, "", "retry", "retry"), (None, "off", "retry", "off"), ("report", "off", "retry", "report"),
     (None, "", "off", "off")],
)
def test_the_request_then_the_deployment_then_the_model_decide(
    asked: str | None, deployed: str, model: str, expected: str
) -> None:
    spec = ModelSpec(name="m", engine="embedded", verify=model)  # type: ignore[arg-type]
    assert verify_mode(asked, Settings(verify=deployed), spec) == expected


def test_a_deployment_setting_that_is_no_mode_names_its_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        verify_mode(None, Settings(verify="always"), ModelSpec(name="m", engine="embedded"))
    assert caught.value.variable == "NARRATOR_VERIFY"


def test_keep_stores_the_best_attempt_as_the_chunk(manifest: Manifest, store: RecordingStore) -> None:
    job = JobStore(store, manifest.job_id)
    checks = [
        ChunkCheck(passed=False, reasons=["silent"], seconds=1.0),
        ChunkCheck(passed=False, reasons=["heard 3 of 9 words"], score=0.33, seconds=2.0),
        ChunkCheck(passed=False, reasons=["heard 2 of 9 words", "too short: x"], score=0.5, seconds=3.0),
    ]
    for n, check in enumerate(checks):
        store.put_bytes(cache_key(attempt_of(manifest, manifest.chunks[0], n)[1]), f"audio {n}".encode())
        job.put_json(job.check_key(0, n), check.model_dump(mode="json"))
    verdict = keep(manifest.job_id, 0, 3, manifest, store, cached=False)
    assert (verdict.kept, verdict.attempts, verdict.check.score) == (1, 3, 0.33)  # fewest rules broken
    assert store.get_bytes(job.chunk_key(0)) == b"audio 1"
    assert job.done()[0].seconds == 2.0
    assert job.get_json(job.check_key(0))["kept"] == 1
