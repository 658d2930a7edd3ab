"""Object storage fixtures: a real moto S3 server, settings for it, and a store per backend.

``moto_server`` (session): moto's own server as a subprocess on a free loopback port.
``s3_settings``: a fresh bucket and Settings pointing at it (dummy credentials in env).
``file_settings``: Settings with file storage in a tmp folder.
``store``: parametrized over ``file`` and ``s3`` so behaviour tests run against both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from narrator.settings import Settings
from narrator.storage import FileStore, ObjectStore
from narrator.storage.s3 import S3Store

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self) -> Any:
        """A raw boto3 S3 client for inspecting what the store wrote."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 2}),
        )

    def create_bucket(self) -> str:
        name = f"narrator-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/moto-api/", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval, not synchronisation
    raise RuntimeError(f"moto_server not ready after {START_DEADLINE}s: {log_path.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    # The server itself needs no credentials; keep the parent's real ones away from it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield MotoServer(endpoint_url=url, process=process, log_path=log_path)
    finally:
        _stop(process)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only: never a developer's real profile or keys."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_settings(moto_server: MotoServer, aws_env: None) -> Settings:
    """A fresh, empty bucket; Settings with ``storage_url=s3://<bucket>`` at moto."""
    bucket = moto_server.create_bucket()
    return Settings().with_(storage_url=f"s3://{bucket}", s3_endpoint_url=moto_server.endpoint_url)


@pytest.fixture
def file_settings(tmp_path: Path) -> Settings:
    return Settings().with_(storage_url=(tmp_path / "storage").as_uri())


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The same behaviour, both backends. The S3 store sits under a prefix and pages
    lists in sevens, so prefix mapping and pagination are exercised everywhere."""
    if request.param == "file":
        return FileStore(tmp_path / "storage")
    settings: Settings = request.getfixturevalue("s3_settings")
    return S3Store.from_url(
        f"{settings.storage_url}/root",
        settings,
        page_size=7,
        connect_timeout=2.0,
        read_timeout=20.0,
        max_attempts=2,
    )
