"""compose.yaml's `storage` and `storage-init`, run for real: the same SeaweedFS release, the same
server flags and environment, the same init script with the environment compose gives it.

Only what a host cannot share is changed: ports (free ones instead of 8333, 9333, ...), the
data folder, and volume sizes small enough for a test disk. No Docker: the storage container's
loopback is this host's, and 127.0.0.2 stands for "another container on the network" (a
socket bound to 127.0.0.1 does not answer there; one bound to 0.0.0.0 does).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.deploy.stack import command_of, compose
from tests.support.procs import free_port, wait_until
from tests.support.seaweed import INIT_SCRIPT, WEED, key_works, stop_server

pytestmark = pytest.mark.integration

ELSEWHERE = "127.0.0.2"
PORTS = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]


@dataclass
class Storage:
    ports: dict[str, int]
    folder: Path
    process: subprocess.Popen[bytes]
    services: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self, key: str, secret: str) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}),
        )

    def worker_client(self) -> Any:
        env = self.services["cpu-worker"]["environment"]
        return self.client(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])

    def admin_client(self) -> Any:
        env = self.services["storage"]["environment"]
        return self.client(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])

    def logs(self) -> str:
        path = self.folder / "weed.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def server_command(storage: dict[str, Any], folder: Path, ports: dict[str, int]) -> list[str]:
    """compose's command for `storage`; later flags win in weed's (Go's) flag parsing."""
    return [str(WEED), "-logtostderr=true", *command_of(storage), f"-dir={folder}",
            "-volume.max=16", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
            f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}"]  # fmt: skip


def init_env(storage: Storage) -> dict[str, str]:
    """compose's environment for `storage-init`, its loopback addresses moved to this test's ports."""
    env = dict(storage.services["storage-init"]["environment"])
    moved = {"STORAGE_MASTER": ("master", "master_grpc"), "STORAGE_FILER": ("filer", "filer_grpc")}
    for name, (port, grpc) in moved.items():
        host = env[name].rsplit(":", 1)[0]
        assert host == "127.0.0.1", f"storage-init reaches {name} at {env[name]}: the storage container's loopback"
        env[name] = f"{host}:{storage.ports[port]}.{storage.ports[grpc]}"
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(storage.folder),
            "TMPDIR": str(storage.folder), "WEED": str(WEED), "STORAGE_INIT_TIMEOUT": "60"}
    return base | env


def _healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"weed server exited with {process.returncode}: {log.read_text()[-2000:]}")
    try:
        return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    folder = tmp_path_factory.mktemp("compose-storage")
    (folder / "data").mkdir()
    services = compose()["services"]
    ports = {name: free_port() for name in PORTS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"TMPDIR": str(folder), "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1", **services["storage"]["environment"]}
    with open(folder / "weed.log", "wb") as log:
        process = subprocess.Popen(server_command(services["storage"], folder / "data", ports),
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    found = Storage(ports, folder, process, services)
    try:
        wait_until(lambda: _healthy(found.endpoint, process, folder / "weed.log"), 60,
                   "SeaweedFS to answer /healthz (the compose health check)")
        yield found
    finally:
        stop_server(process, ports)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response.get("Error", {}).get("Code"))


def test_storage_is_never_open_and_the_workers_key_is_scoped_to_the_bucket(storage: Storage) -> None:
    bucket = storage.services["storage-init"]["environment"]["STORAGE_BUCKET"]
    # Before storage-init: the admin key already guards S3; nobody else gets in.
    assert httpx.get(storage.endpoint + "/", timeout=5).status_code == 403
    assert storage.admin_client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_code(lambda: storage.worker_client().list_objects_v2(Bucket=bucket)) in {
        "InvalidAccessKeyId", "AccessDenied", "NoSuchBucket"}

    done = subprocess.run(["sh", str(INIT_SCRIPT)], env=init_env(storage), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, f"{done.stderr}\n{storage.logs()}"
    worker, admin = storage.worker_client(), storage.admin_client()
    wait_until(lambda: key_works(worker, bucket), 30, "the workers' key to be accepted")

    # What a narrator worker does: write, read, list, delete in its bucket.
    worker.put_object(Bucket=bucket, Key="jobs/j/chunk-0.flac", Body=b"fLaC")
    assert worker.get_object(Bucket=bucket, Key="jobs/j/chunk-0.flac")["Body"].read() == b"fLaC"
    assert worker.list_objects_v2(Bucket=bucket, Prefix="jobs/")["KeyCount"] == 1
    # Nothing beyond it: no new bucket, no other bucket.
    assert error_code(lambda: worker.create_bucket(Bucket="not-narrators")) == "AccessDenied"
    admin.create_bucket(Bucket="someone-elses")
    assert error_code(lambda: worker.put_object(Bucket="someone-elses", Key="x", Body=b"x")) == "AccessDenied"
    assert error_code(lambda: worker.list_objects_v2(Bucket="someone-elses")) == "AccessDenied"
    # The admin key still works after init (it is the same key, now an identity in the filer).
    assert admin.get_object(Bucket=bucket, Key="jobs/j/chunk-0.flac")["Body"].read() == b"fLaC"
    assert httpx.get(storage.endpoint + "/", timeout=5).status_code == 403


def test_only_the_s3_gateway_answers_beyond_the_storage_containers_loopback(storage: Storage) -> None:
    assert answers(ELSEWHERE, storage.ports["s3"]), "the S3 gateway must be reachable by the workers"
    for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc"):
        assert answers("127.0.0.1", storage.ports[name]), f"{name} does not answer at all"
        assert not answers(ELSEWHERE, storage.ports[name]), f"{name} answers beyond the loopback, without credentials"
