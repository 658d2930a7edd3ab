"""``narrator gc`` on real stores: a file store aged with os.utime, and moto's S3 server with
the planner's clock moved forward (moto cannot back-date an object)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from narrator.cli import main
from narrator.errors import StorageError, StoragePermanentError
from narrator.job.store import JobStore, cache_key
from narrator.ops import gc
from narrator.settings import Settings
from narrator.storage import FileStore, ObjectStore, open_store
from narrator.storage import s3 as s3_module
from narrator.storage.s3 import S3Store, _per_key_error, translate

DAY = 86400.0
IDS = {name: (name[0] * 32) for name in ("a-done", "b-recent", "c-abandoned", "d-running", "e-cancelled")}
OLD_CACHE = cache_key("0f" * 32)
NEW_CACHE = cache_key("1e" * 32)


def make_jobs(store: ObjectStore) -> dict[str, JobStore]:
    """Five jobs in the states gc must tell apart, written through the job layout."""
    jobs = {name: JobStore(store, job_id) for name, job_id in IDS.items()}
    for j in jobs.values():
        store.put_bytes(j.manifest_key, b"{}" * 50)
        store.put_bytes(j.staged_key(2), b"")
        store.put_bytes(j.chunk_key(0), b"f" * 1000)
        store.put_bytes(j.done_key(0, 1.0, False), b"")
    for name in ("a-done", "b-recent"):
        store.put_bytes(jobs[name].output_key("wav"), b"w" * 4000)
        store.put_bytes(jobs[name].result_key, b"{}")
    store.put_bytes(jobs["e-cancelled"].cancel_key, b"{}")
    store.put_bytes(jobs["e-cancelled"].error_key, b"{}")
    store.put_bytes(OLD_CACHE, b"c" * 700)
    store.put_bytes(NEW_CACHE, b"c" * 300)
    store.put_bytes("jobs/README", b"not a job")
    return jobs


def age(root: Path, key_prefix: str, days: float) -> None:
    when = time.time() - days * DAY
    target = root / key_prefix
    for path in [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]:
        os.utime(path, (when, when))


def folders(root: Path) -> set[str]:
    return {p.name for p in (root / "jobs").iterdir()}


def test_gc_on_a_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "storage"
    store = FileStore(root)
    jobs = make_jobs(store)
    for name in ("a-done", "c-abandoned", "d-running", "e-cancelled"):
        age(root, jobs[name].prefix, 8)
    age(root, jobs["b-recent"].prefix, 2)
    age(root, "jobs/README", 30)
    store.put_bytes(jobs["d-running"].done_key(1, 1.0, False), b"")  # a chunk finished just now
    age(root, OLD_CACHE, 8)
    monkeypatch.setenv("NARRATOR_STORAGE_URL", root.as_uri())

    assert main(["gc", "--older-than", "7d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would expire 3 jobs (CANCELLED 1, SUCCESS 1, SYNTHESIZING 1): 16 objects, 7.1 KiB" in out
    assert "would expire 1 cache entries: 700 B" in out
    assert folders(root) == {*IDS.values(), "README"}  # a dry run deletes nothing

    assert main(["-v", "gc", "--older-than", "7d", "--json"]) == 0  # -v: every expiry logged too
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err.count("expire kind=job") == 3 and captured.err.count("expire kind=cache") == 1
    assert report["jobs"] == 3 and report["cache_entries"] == 1 and report["kept_jobs"] == 2
    assert report["job_bytes"] == 3 * 1100 + 4002 + 4  # manifests, chunks, the output, small markers
    assert folders(root) == {IDS["b-recent"], IDS["d-running"], "README"}  # no empty folders left behind
    assert store.exists(NEW_CACHE) and not store.exists(OLD_CACHE)
    assert not (root / OLD_CACHE).parent.exists()
    assert jobs["d-running"].markers().chunks_total == 2  # the running job is whole
    # The folders gc removed can be written again at once (a resumed job, a new cache entry).
    store.put_bytes(OLD_CACHE, b"again")
    assert store.get_bytes(OLD_CACHE) == b"again"
    print(out, report)


def test_gc_without_a_cutoff_expires_at_the_results_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "storage"
    jobs = make_jobs(FileStore(root))
    age(root, jobs["a-done"].prefix, 3)
    age(root, jobs["e-cancelled"].prefix, 1)
    monkeypatch.setenv("NARRATOR_STORAGE_URL", root.as_uri())
    monkeypatch.setenv("NARRATOR_JOB_RETENTION", str(int(2 * DAY)))  # results live two days: so do jobs
    assert main(["gc", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["jobs"] == 1 and IDS["a-done"] not in folders(root) and IDS["e-cancelled"] in folders(root)


def test_gc_refuses_a_bad_cutoff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NARRATOR_STORAGE_URL", (tmp_path / "s").as_uri())
    assert main(["gc", "--older-than", "a week"]) == 2
    assert "--older-than: 'a week' is not a duration" in capsys.readouterr().err


@pytest.fixture(params=["moto", "seaweed"])
def s3(request: pytest.FixtureRequest) -> Settings:
    """moto, and SeaweedFS with the compose stack's bucket-scoped worker key (it must be allowed to delete)."""
    settings: Settings = request.getfixturevalue("s3_settings" if request.param == "moto" else "seaweed_settings")
    return settings


@pytest.mark.integration
def test_gc_on_s3_with_the_clock_moved_on(s3: Settings) -> None:
    store = S3Store.from_url(f"{s3.storage_url}/narrator", s3, page_size=4)
    outside = S3Store.from_url(s3.storage_url, s3)
    stranger = f"jobs/{'f' * 32}/result.json"
    outside.put_bytes(stranger, b"{}")  # beside the store's prefix, not under it
    make_jobs(store)
    policy = gc.Policy(older_than=7 * DAY, unfinished_after=30 * DAY, floor=720)

    now = gc.collect(store, time.time(), policy)
    assert now.to_json()["jobs"] == 0 and now.cache_entries == 0 and now.kept_jobs == 5

    week = gc.collect(store, time.time() + 8 * DAY, policy)
    print(week.to_json())
    assert week.jobs == {"SUCCESS": 2, "CANCELLED": 1} and week.cache_entries == 2 and week.kept_jobs == 2
    left = {key.split("/")[1] for key in store.list("jobs/")}
    assert left == {IDS["c-abandoned"], IDS["d-running"], "README"}  # not ended: not idle for 30 days yet

    month = gc.collect(store, time.time() + 31 * DAY, policy)
    assert month.jobs == {"SYNTHESIZING": 2}
    assert store.list("jobs/") == ["jobs/README"] and store.list("cache/") == []
    assert outside.exists(stranger)  # outside the store's prefix: never listed, never deleted


@pytest.mark.integration
def test_s3_lists_with_times_and_deletes_in_batches(s3: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(s3)
    assert isinstance(store, S3Store)
    keys = [f"cache/aa/{i:03d}.flac" for i in range(23)]
    for key in keys:
        store.put_bytes(key, b"x" * 3)
    listed = list(store.list_objects("cache/"))
    assert [o.key for o in listed] == keys and {o.size for o in listed} == {3}
    assert all(abs(o.modified - time.time()) < 300 for o in listed)
    calls: list[int] = []
    real = store.client.delete_objects

    def counting(**kwargs: object) -> object:
        calls.append(len(kwargs["Delete"]["Objects"]))  # type: ignore[index]
        return real(**kwargs)

    monkeypatch.setattr(s3_module, "DELETE_BATCH", 10)
    monkeypatch.setattr(store.client, "delete_objects", counting)
    assert store.delete_many([*keys, "cache/aa/missing.flac"]) == 24
    assert calls == [10, 10, 4]
    assert store.list("cache/") == []


@pytest.mark.parametrize(
    ("code", "error"),
    [("AccessDenied", StoragePermanentError), ("SlowDown", StorageError), ("InternalError", StorageError),
     ("NoSuchBucket", StoragePermanentError)],
)
def test_a_key_deleteobjects_could_not_delete_is_translated(code: str, error: type[Exception]) -> None:
    exc = translate(_per_key_error({"Key": "cache/x", "Code": code, "Message": "no"}), "delete", "cache/x")
    assert type(exc) is error and str(exc).startswith(f"delete cache/x: S3 answered {code}")
