"""ObjectStore behaviour, the same tests against the file backend and two S3 servers: moto
and SeaweedFS (the compose stack's server, through the worker's bucket-scoped key)."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import httpx
import pytest

from narrator.errors import ObjectNotFound, StoragePermanentError
from narrator.settings import Settings
from narrator.storage import FileStore, ObjectStore
from narrator.storage.s3 import S3Store

INVALID_KEYS = ["../x", "/abs", "a//b", "a/../b", "", "a/", ".hidden", "a b", "a\\b", "a/./b/..", "ü"]


@pytest.fixture(params=["file", "moto", pytest.param("seaweed", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The same behaviour on every backend. The S3 stores sit under a prefix and page
    lists in sevens, so prefix mapping and pagination are exercised everywhere."""
    if request.param == "file":
        return FileStore(tmp_path / "storage")
    settings: Settings = request.getfixturevalue("s3_settings" if request.param == "moto" else "seaweed_settings")
    return S3Store.from_url(
        f"{settings.storage_url}/root", settings, page_size=7, connect_timeout=2.0, read_timeout=20.0, max_attempts=2
    )


def download(url: str) -> bytes:
    """Fetch a presigned URL the way a client with no credentials would."""
    if url.startswith("file:"):
        with urllib.request.urlopen(url) as response:
            data: bytes = response.read()
            return data
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, response.text
    return response.content


def test_put_and_get_bytes(store: ObjectStore) -> None:
    store.put_bytes("jobs/j1/manifest.json", b'{"a": 1}', content_type="application/json")
    assert store.get_bytes("jobs/j1/manifest.json") == b'{"a": 1}'
    store.put_bytes("jobs/j1/manifest.json", b"replaced")
    assert store.get_bytes("jobs/j1/manifest.json") == b"replaced"


def test_empty_object(store: ObjectStore) -> None:
    store.put_bytes("empty", b"")
    assert store.exists("empty")
    assert store.get_bytes("empty") == b""


def test_put_and_get_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    src.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    store.put_file("jobs/j1/voices/v.wav", src, content_type="audio/wav")
    out = tmp_path / "out.wav"
    store.get_file("jobs/j1/voices/v.wav", out)
    assert out.read_bytes() == src.read_bytes()


def test_large_file_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for _ in range(21):
            fh.write(os.urandom(1024 * 1024))
    store.put_file("jobs/j1/output.flac", src)
    out = tmp_path / "big.out"
    store.get_file("jobs/j1/output.flac", out)
    assert _sha256(out) == _sha256(src)
    assert out.stat().st_size == 21 * 1024 * 1024


def test_exists(store: ObjectStore) -> None:
    assert not store.exists("jobs/j1/chunks/00000.flac")
    store.put_bytes("jobs/j1/chunks/00000.flac", b"x")
    assert store.exists("jobs/j1/chunks/00000.flac")
    assert not store.exists("jobs/j1/chunks")  # a folder is not an object


def test_list_is_a_sorted_folder_listing(store: ObjectStore) -> None:
    for key in ["jobs/a/2", "jobs/a/1", "jobs/a/sub/3", "jobs/ab/x", "other/y"]:
        store.put_bytes(key, b"k")
    assert store.list("jobs/a/") == ["jobs/a/1", "jobs/a/2", "jobs/a/sub/3"]
    # Without the trailing slash it is still the folder, not a string prefix.
    assert store.list("jobs/a") == ["jobs/a/1", "jobs/a/2", "jobs/a/sub/3"]
    assert store.list("") == ["jobs/a/1", "jobs/a/2", "jobs/a/sub/3", "jobs/ab/x", "other/y"]
    assert store.list("nothing/") == []


def test_list_many_keys(store: ObjectStore) -> None:
    # 40 keys: the S3 store pages in sevens, so this takes six pages.
    keys = [f"jobs/j/chunks/{i:05d}.flac" for i in range(40)]
    for key in reversed(keys):
        store.put_bytes(key, b"c")
    assert store.list("jobs/j/chunks/") == keys


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_bytes("jobs/j1/tmp", b"x")
    store.delete("jobs/j1/tmp")
    assert not store.exists("jobs/j1/tmp")
    store.delete("jobs/j1/tmp")
    store.delete("never/was")
    assert store.list("jobs/") == []


def test_copy(store: ObjectStore) -> None:
    store.put_bytes("cache/abc", b"chunk audio")
    store.copy("cache/abc", "jobs/j1/chunks/00003.flac")
    assert store.get_bytes("jobs/j1/chunks/00003.flac") == b"chunk audio"
    assert store.get_bytes("cache/abc") == b"chunk audio"


def test_copy_missing_source(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound, match="cache/nope"):
        store.copy("cache/nope", "jobs/j1/x")
    assert not store.exists("jobs/j1/x")


def test_missing_key(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match="jobs/none"):
        store.get_bytes("jobs/none")
    with pytest.raises(ObjectNotFound, match="jobs/none"):
        store.get_file("jobs/none", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    store.put_bytes("ok", b"x")
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, src),
        lambda: store.get_bytes(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.copy("ok", key),
        lambda: store.copy(key, "ok2"),
        lambda: store.presigned_url(key, 60),
    ]
    for call in calls:
        with pytest.raises(StoragePermanentError, match="invalid storage key"):
            call()
    assert store.list("") == ["ok"]


def test_presigned_url_downloads(store: ObjectStore) -> None:
    store.put_bytes("jobs/j1/output.wav", b"RIFF-audio-bytes")
    url = store.presigned_url("jobs/j1/output.wav", 300)
    assert download(url) == b"RIFF-audio-bytes"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//b/", "../../etc"])
def test_list_refuses_odd_prefixes(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(StoragePermanentError, match="invalid storage key"):
        store.list(prefix)
