"""Chunks heard: each attempt checked against its text, failing chunks synthesized again, the best kept.

The steps, whoever runs them (a GPU worker with a GPU recogniser, a CPU worker, the
in-process runner):

1. attempt ``n`` of chunk ``i`` is synthesized with :func:`attempt_of` (attempt 0 is the
   chunk as staged; later ones take the next seed) into the cache, not yet the chunk;
2. :func:`check_attempt` checks it and stores ``checks/{i}-{n}.json``;
3. :func:`next_attempt` says whether to synthesize again (``retry`` mode, a failed check,
   attempts left);
4. :func:`keep` stores the best attempt as the chunk, its done marker, and the verdict
   ``checks/{i}.json``.

:func:`report` then reads the verdicts for the job's result, and the joined word times
for its captions.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import BaseModel

from ..errors import AudioError, ObjectNotFound
from ..models import ModelSpec
from ..result import FailingChunk, Verification
from ..storage import ObjectStore
from ..verify import ChunkCheck, Limits, Recogniser, Timed, check_audio, phrases
from .store import ChunkEntry, JobStore, Manifest, cache_key

log = logging.getLogger(__name__)

_SEED_RANGE = 2**32


class Verdict(BaseModel):
    """What became of a checked chunk: the attempt kept and its check."""

    index: int
    kept: int
    attempts: int
    check: ChunkCheck


def attempt_of(manifest: Manifest, entry: ChunkEntry, attempt: int) -> tuple[dict[str, Any], str]:
    """(settings, cache digest) of a chunk's attempt: attempt 0 is the chunk as staged; a later
    one takes the seed after the last (models that bind one; others sample anew anyway)."""
    params = dict(entry.params if entry.params is not None else manifest.params)
    if attempt == 0:
        return params, entry.digest
    if isinstance(params.get("seed"), int):
        params["seed"] = (params["seed"] + attempt) % _SEED_RANGE
    return params, hashlib.sha256(f"{entry.digest}/attempt-{attempt}".encode()).hexdigest()


def limits_for(spec: ModelSpec, manifest: Manifest, entry: ChunkEntry) -> Limits:
    params = entry.params if entry.params is not None else manifest.params
    speed = params.get("speed", 1.0)
    return Limits(seconds_per_word=60.0 / spec.words_per_minute,
                  speed=float(speed) if isinstance(speed, int | float) and speed > 0 else 1.0)


def check_attempt(
    job_id: str, index: int, attempt: int, manifest: Manifest, spec: ModelSpec, store: ObjectStore,
    recogniser: Recogniser | None,
) -> ChunkCheck:
    entry = manifest.chunks[index]
    _, digest = attempt_of(manifest, entry, attempt)
    samples, rate = _decode(store.get_bytes(cache_key(digest)), index)
    check = check_audio(samples, rate, entry.text, limits_for(spec, manifest, entry), recogniser,
                        manifest.request.language)
    job = JobStore(store, job_id)
    job.put_json(job.check_key(index, attempt), check.model_dump(mode="json"))
    log.info("chunk checked", extra={"job_id": job_id, "chunk": index, "attempt": attempt, "passed": check.passed,
                                     "score": check.score, "reasons": "; ".join(check.reasons)})
    return check


def next_attempt(manifest: Manifest, attempt: int, check: ChunkCheck) -> int | None:
    """The attempt to synthesize next, or None: keep the best so far."""
    if check.passed or manifest.verify != "retry" or attempt + 1 >= manifest.verify_attempts:
        return None
    return attempt + 1


def keep(job_id: str, index: int, attempts: int, manifest: Manifest, store: ObjectStore, cached: bool) -> Verdict:
    """Store the best of ``attempts`` attempts as the chunk, with its done marker and verdict."""
    job = JobStore(store, job_id)
    checks = {n: ChunkCheck.model_validate(job.get_json(job.check_key(index, n))) for n in range(attempts)}
    best = max(checks, key=lambda n: (checks[n].rank, -n))
    verdict = Verdict(index=index, kept=best, attempts=attempts, check=checks[best])
    job.put_json(job.check_key(index), verdict.model_dump(mode="json"))
    _, digest = attempt_of(manifest, manifest.chunks[index], best)
    job.put_chunk_copy(index, cache_key(digest), checks[best].seconds, cached and attempts == 1)
    if not verdict.check.passed:
        log.warning("chunk still fails its check", extra={"job_id": job_id, "chunk": index, "attempts": attempts,
                                                          "reasons": "; ".join(verdict.check.reasons)})
    return verdict


def step(
    job_id: str, index: int, attempt: int, manifest: Manifest, spec: ModelSpec, store: ObjectStore,
    recogniser: Recogniser | None, cached: bool,
) -> Verdict | int:
    """Check attempt ``attempt``: the chunk's verdict (its best attempt kept), or the attempt to
    synthesize next. ``cached``: the attempt came from the cache."""
    check = check_attempt(job_id, index, attempt, manifest, spec, store, recogniser)
    following = next_attempt(manifest, attempt, check)
    if following is None:
        return keep(job_id, index, attempt + 1, manifest, store, cached)
    return following


def settle(
    job_id: str, index: int, attempt: int, manifest: Manifest, spec: ModelSpec, store: ObjectStore,
    recogniser: Recogniser | None, synthesize: Callable[[int], bool], cached: bool,
) -> Verdict:
    """:func:`step` here until a verdict: ``synthesize(n)`` makes attempt ``n`` (True when it came
    from the cache). For a process that both synthesizes and checks."""
    while not isinstance(outcome := step(job_id, index, attempt, manifest, spec, store, recogniser, cached), Verdict):
        attempt = outcome
        cached = synthesize(attempt)
    return outcome


def verdicts(manifest: Manifest, store: ObjectStore) -> list[Verdict]:
    job = JobStore(store, manifest.job_id)
    out = []
    for entry in manifest.chunks:
        try:
            out.append(Verdict.model_validate(job.get_json(job.check_key(entry.index))))
        except ObjectNotFound:
            raise AudioError(f"chunk {entry.index}: no verdict stored for a checked job") from None
    return out


def report(manifest: Manifest, found: Sequence[Verdict], spans: Sequence[tuple[float, float, float]]) -> Verification:
    """The job's check figures; ``spans`` are (start, end, offset) of each chunk in the output,
    ``offset`` the time in the chunk's own audio where its sound starts."""
    failing = [
        FailingChunk(index=v.index, start=round(start, 3), end=round(end, 3),
                     text=manifest.chunks[v.index].caption or manifest.chunks[v.index].text,
                     reasons=v.check.reasons, score=v.check.score)
        for v, (start, end, _) in zip(found, spans, strict=True) if not v.check.passed
    ]
    recognisers = {v.check.recogniser for v in found if v.check.recogniser}
    return Verification(
        mode=manifest.verify,
        recogniser=", ".join(sorted(recognisers)) or None,
        checked=len(found),
        retried=sum(v.attempts > 1 for v in found),
        attempts=sum(v.attempts for v in found),
        passed=sum(v.check.passed for v in found),
        failing=failing,
    )


def joined_words(found: Sequence[Verdict], spans: Sequence[tuple[float, float, float]]) -> list[Timed]:
    """Every chunk's word times moved to where the chunk lies in the joined output."""
    out = []
    for verdict, (start, end, offset) in zip(found, spans, strict=True):
        for word in verdict.check.words:
            a = min(max(start + word.start - offset, start), end)
            b = min(max(start + word.end - offset, a), end)
            out.append(Timed(text=word.text, start=round(a, 3), end=round(b, 3)))
    return out


def word_cues(words: Sequence[Timed]) -> dict[str, list[tuple[float, float, str]]]:
    """Cues for the word and the phrase captions."""
    return {"words": [(w.start, w.end, w.text) for w in words],
            "phrases": [(p.start, p.end, p.text) for p in phrases(words)]}


def _decode(data: bytes, index: int) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"chunk {index}: stored audio is unreadable: {exc}") from exc
    return samples.mean(axis=1), int(rate)
