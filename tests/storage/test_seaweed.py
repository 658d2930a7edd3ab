"""The stack's storage set-up, deploy/seaweedfs/init.sh, run against a real SeaweedFS.

Each test provisions its own bucket and identities on the session server, so the shared
worker key that the other storage tests use is never changed here.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from narrator.errors import StoragePermanentError
from narrator.settings import Settings
from narrator.storage.s3 import S3Store
from tests.support.seaweed import (
    ADMIN,
    BUCKET,
    WEED,
    Keys,
    SeaweedServer,
    elapsed_until,
    key_works,
    quiet_ports,
    run_init,
)


def fresh() -> dict[str, str]:
    """A bucket and identities of this test's own (init.sh's overrides)."""
    tag = uuid.uuid4().hex[:10]
    return {
        "bucket": f"narrator-{tag}",
        "admin_user": f"admin-{tag}",
        "worker_user": f"worker-{tag}",
        "admin_access_key": f"ADMIN{tag}",
        "admin_secret_key": f"admin-secret-{tag}",
        "access_key": f"WORKER{tag}",
        "secret_key": f"worker-secret-{tag}",
    }


def keys(env: dict[str, str], prefix: str = "") -> Keys:
    return Keys(env[f"{prefix}access_key"], env[f"{prefix}secret_key"])


def store_as(server: SeaweedServer, key: Keys, url: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """narrator's own S3 store holding ``key``, as a worker of the stack would."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key.secret_key)
    settings = Settings().with_(s3_endpoint_url=server.endpoint_url)
    return S3Store.from_url(url, settings, connect_timeout=2.0, read_timeout=20.0, max_attempts=1)


def denied(call: Callable[[], object]) -> str:
    """The S3 error code a raw boto3 call was refused with."""
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


pytestmark = pytest.mark.integration


def test_init_scopes_the_worker_key_to_its_bucket(
    seaweed_server: SeaweedServer, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = fresh()
    done = run_init(seaweed_server.master, seaweed_server.filer, seaweed_server.folder, **env)
    assert done.returncode == 0, done.stderr
    assert f"created bucket {env['bucket']}" in done.stdout
    assert env["secret_key"] not in done.stdout + done.stderr
    assert env["admin_secret_key"] not in done.stdout + done.stderr
    worker = keys(env)
    raw = seaweed_server.client(worker)
    # The S3 gateway learns identities from the filer asynchronously; measured, and bounded.
    lag = elapsed_until(lambda: key_works(raw, env["bucket"]), 10)
    print(f"worker key accepted {lag:.2f} s after init.sh returned")

    store = store_as(seaweed_server, worker, f"s3://{env['bucket']}/narrator", monkeypatch)
    store.put_bytes("jobs/j1/output.wav", b"RIFF-audio")
    assert store.get_bytes("jobs/j1/output.wav") == b"RIFF-audio"
    assert store.list("jobs/") == ["jobs/j1/output.wav"]
    url = store.presigned_url("jobs/j1/output.wav", 300)
    assert httpx.get(url, timeout=10).content == b"RIFF-audio"
    store.delete("jobs/j1/output.wav")
    assert store.list("jobs/") == []

    # Another bucket (it exists: the suite's own) is closed to this key, for every operation.
    other = store_as(seaweed_server, worker, f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}", monkeypatch)
    calls: list[Callable[[], object]] = [
        lambda: other.put_bytes("k", b"x"),
        lambda: other.get_bytes("k"),
        lambda: other.list(""),
    ]
    for call in calls:
        with pytest.raises(StoragePermanentError, match="AccessDenied"):
            call()
    assert denied(lambda: raw.create_bucket(Bucket=f"made-by-worker-{uuid.uuid4().hex[:8]}")) == "AccessDenied"
    assert denied(lambda: raw.delete_bucket(Bucket=env["bucket"])) == "AccessDenied"
    assert denied(lambda: seaweed_server.client(Keys("nobody", "nothing-at-all")).list_buckets()) == (
        "InvalidAccessKeyId"
    )

    # The admin key of the same run can do what the worker cannot.
    admin = seaweed_server.client(keys(env, "admin_"))
    made = f"made-by-admin-{uuid.uuid4().hex[:8]}"
    admin.create_bucket(Bucket=made)
    admin.delete_bucket(Bucket=made)
    admin.put_object(Bucket=BUCKET, Key=f"admin-{uuid.uuid4().hex[:8]}", Body=b"x")


def test_init_again_changes_nothing_and_a_new_key_replaces_the_old(
    seaweed_server: SeaweedServer, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = fresh()
    init = partial(run_init, seaweed_server.master, seaweed_server.filer, seaweed_server.folder)
    assert init(**env).returncode == 0
    worker = seaweed_server.client(keys(env))
    elapsed_until(lambda: key_works(worker, env["bucket"]), 10)
    worker.put_object(Bucket=env["bucket"], Key="kept", Body=b"still here")

    again = init(**env)  # what every `docker compose up` does
    assert again.returncode == 0, again.stderr
    assert f"bucket {env['bucket']} exists" in again.stdout and "replaced" not in again.stdout
    assert worker.get_object(Bucket=env["bucket"], Key="kept")["Body"].read() == b"still here"

    rotated = {**env, "access_key": env["access_key"] + "N", "secret_key": env["secret_key"] + "-new"}
    done = init(**rotated)
    assert done.returncode == 0, done.stderr
    assert f"identity {env['worker_user']} had other keys or actions; replaced" in done.stdout
    new = seaweed_server.client(keys(rotated))
    elapsed_until(lambda: key_works(new, env["bucket"]), 10)
    assert new.get_object(Bucket=env["bucket"], Key="kept")["Body"].read() == b"still here"
    elapsed_until(lambda: not key_works(worker, env["bucket"]), 10)
    assert denied(lambda: worker.get_object(Bucket=env["bucket"], Key="kept")) == "InvalidAccessKeyId"

    # A new secret for the same key is taken in place, and the old secret stops working.
    resecret = {**rotated, "secret_key": rotated["secret_key"] + "-2"}
    done = init(**resecret)
    assert done.returncode == 0, done.stderr
    assert "replaced" not in done.stdout
    elapsed_until(lambda: key_works(seaweed_server.client(keys(resecret)), env["bucket"]), 10)
    elapsed_until(lambda: not key_works(new, env["bucket"]), 10)
    assert denied(lambda: new.get_object(Bucket=env["bucket"], Key="kept")) == "SignatureDoesNotMatch"
    # Only the worker identity was replaced: the admin key kept working throughout.
    admin = seaweed_server.client(keys(env, "admin_"))
    assert admin.get_object(Bucket=env["bucket"], Key="kept")["Body"].read() == b"still here"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket": ""}, "STORAGE_BUCKET is not set"),
        ({"bucket": "Narrator_Bucket"}, "STORAGE_BUCKET must be a bucket name"),
        ({"access_key": ""}, "STORAGE_ACCESS_KEY is not set"),
        ({"secret_key": "short"}, "STORAGE_SECRET_KEY must be 8-128 characters"),
        ({"admin_secret_key": "has spaces in it"}, "STORAGE_ADMIN_SECRET_KEY must be 8-128 characters"),
        ({"access_key": ADMIN.access_key}, "STORAGE_ACCESS_KEY must differ from STORAGE_ADMIN_ACCESS_KEY"),
        ({"worker_user": "same", "admin_user": "same"}, "STORAGE_WORKER_USER must differ"),
        ({"master": "storage"}, "STORAGE_MASTER must be host:port"),
        ({"init_timeout": "soon"}, "STORAGE_INIT_TIMEOUT must be a whole number"),
    ],
)
def test_init_refuses_bad_environment(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    env = {"master": "127.0.0.1:1", "filer": "127.0.0.1:2", **overrides}
    done = run_init(env.pop("master"), env.pop("filer"), tmp_path, **env)
    assert done.returncode == 2
    assert f"storage-init: {message}" in done.stderr


def test_init_gives_up_on_an_absent_server(tmp_path: Path) -> None:
    master, filer = (f"127.0.0.1:{port}" for port in quiet_ports(2))
    done = run_init(master, filer, tmp_path, init_timeout="2")
    assert done.returncode == 2
    assert f"no SeaweedFS answered at master {master}, filer {filer} within 2s" in done.stderr


# What init.sh may call: the applets of the image's busybox, and weed.
IMAGE_TOOLS = ["sh", "grep", "awk", "sort", "tr", "timeout", "date", "sleep", "printf", "echo", "cat"]


def busybox_path(folder: Path) -> str:
    """A PATH with nothing but busybox applets and weed, as in chrislusf/seaweedfs (alpine)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed: `apt-get install busybox` (the image's shell and tools)")
    folder.mkdir()
    for tool in IMAGE_TOOLS:
        (folder / tool).symlink_to(busybox)
    (folder / "weed").symlink_to(WEED)
    return str(folder)


def test_init_runs_on_the_images_busybox(seaweed_server: SeaweedServer, tmp_path: Path) -> None:
    path = busybox_path(tmp_path / "bin")
    env = fresh()
    done = run_init(seaweed_server.master, seaweed_server.filer, seaweed_server.folder, path=path, **env)
    assert done.returncode == 0, done.stderr
    assert f"created bucket {env['bucket']}" in done.stdout
    worker = seaweed_server.client(keys(env))
    elapsed_until(lambda: key_works(worker, env["bucket"]), 10)
    # busybox's timeout passes on the exit status of what it stopped, and weed shell exits 0 on
    # SIGTERM: a server that never answers must still fail the run, not pass it.
    master, filer = (f"127.0.0.1:{port}" for port in quiet_ports(2))
    absent = run_init(master, filer, tmp_path, path=path, init_timeout="2", **env)
    assert absent.returncode == 2, absent.stdout
    assert "no SeaweedFS answered" in absent.stderr
