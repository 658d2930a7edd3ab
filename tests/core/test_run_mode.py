"""The run mode, the context and the retry policy: chosen, built and applied once (narrator/tasks)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import soundfile as sf

from narrator import jobs
from narrator.errors import EngineFailed, EngineUnavailable, ModelError, StorageError
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.tasks.app import app, configure
from narrator.tasks.context import Context, bound, context_for, current
from narrator.tasks.mode import Brokered, InProcess, no_secrets
from narrator.tasks.names import CHUNK_TASK, JOB_TASK, STAGE_TASK, job_id_of
from narrator.tasks.retry import CAP_SECONDS, NO_RETRIES, RetryPolicy, retry_delay
from tests.support.procs import ROOT

JOB = "0123456789abcdef0123456789abcdef"


def in_process(tmp_path: Path, name: str = "store") -> Settings:
    return Settings(storage_url=(tmp_path / name).as_uri(), workflows_dir=PROJECT_WORKFLOWS)


def test_backoff_doubles_to_a_minute_and_draws_between_half_and_all_of_each_step() -> None:
    for attempt, step in [(0, 1.0), (1, 2.0), (3, 8.0), (5, 32.0), (6, CAP_SECONDS), (20, CAP_SECONDS)]:
        assert retry_delay(attempt, rand=lambda: 0.0) == step / 2
        assert retry_delay(attempt, rand=lambda: 1.0) == step
    # Five retries wait at most 1+2+4+8+16 s: what the storage-fault bound in tests/reliability assumes.
    assert sum(retry_delay(a, rand=lambda: 1.0) for a in range(5)) == 31


def test_only_retryable_errors_retry_and_only_while_retries_last() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.delay(EngineUnavailable("restarting"), 0) is not None
    assert policy.delay(StorageError("throttled"), 1) is not None
    assert policy.delay(StorageError("throttled"), 2) is None  # the third failure is the job's
    assert policy.delay(EngineFailed("bad node"), 0) is None
    assert policy.delay(ValueError("a bug"), 0) is None
    assert NO_RETRIES.delay(EngineUnavailable("restarting"), 0) is None


def test_the_mode_is_chosen_from_the_settings_once(tmp_path: Path) -> None:
    local = context_for(in_process(tmp_path))
    assert isinstance(local.mode, InProcess) and local.mode is local.mode
    assert local.mode.backend is None and local.mode.retry == NO_RETRIES
    assert local.mode.job_state(JOB) is None

    brokered = context_for(in_process(tmp_path).with_(broker_url="redis://127.0.0.1:1/0", chunk_max_retries=3))
    assert isinstance(brokered.mode, Brokered)
    assert brokered.mode.retry == RetryPolicy(3)
    assert brokered.mode.backend is brokered.mode.app.backend is not None


def test_each_celery_app_is_configured_once_and_never_changed() -> None:
    first = Settings(broker_url="redis://127.0.0.1:1/0")
    second = Settings(broker_url="redis://127.0.0.1:2/0")
    a, b = configure(first), configure(second)
    task_broker = app.conf.broker_url
    assert a is not b
    assert a.conf.broker_url == first.broker_url and b.conf.broker_url == second.broker_url
    assert configure(first) is a and configure(second) is b
    configure(Settings(broker_url="redis://127.0.0.1:3/0"))
    assert app.conf.broker_url == task_broker, "the task app was reconfigured"


def test_the_worker_app_is_configured_once_from_the_environment(tmp_path: Path) -> None:
    script = (
        "import narrator.tasks.worker as w\n"
        "from narrator.settings import Settings\n"
        "from narrator.tasks import context\n"
        "assert w.app.conf.broker_url == 'redis://127.0.0.1:1/0'\n"
        "assert context.current() is w.context and w.context.mode.app is w.app\n"
        "try:\n"
        "    context.init(Settings(broker_url='redis://127.0.0.1:2/0'))\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {"NARRATOR_BROKER_URL": "redis://127.0.0.1:1/0", "NARRATOR_STORAGE_URL": (tmp_path / "s").as_uri(),
           "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: this process's context is already set, with other settings" in done.stdout


def test_contexts_are_made_once_per_settings_and_bound_per_job(tmp_path: Path) -> None:
    one, other = in_process(tmp_path, "one"), in_process(tmp_path, "other")
    assert context_for(one) is context_for(one) and context_for(one) is not context_for(other)
    outside = current()
    seen: list[Context] = []
    with bound(context_for(one)):
        assert current() is context_for(one)
        thread = threading.Thread(target=lambda: seen.append(current()))
        thread.start()
        thread.join()
    assert current() is outside
    assert seen == [outside], "a context is bound to the job's thread, not to the process"


def test_in_process_jobs_with_different_settings_keep_to_their_own_store(tmp_path: Path) -> None:
    one, other = in_process(tmp_path, "one"), in_process(tmp_path, "other")
    handles = [jobs.submit({"text": f"Job number {n} speaks here."}, s) for n, s in ((1, one), (2, other))]
    results = [h.wait(timeout=120) for h in handles]
    for handle, settings, result in zip(handles, (one, other), results, strict=True):
        assert result.success and handle.status() == "SUCCESS"
        keys = context_for(settings).store.list("jobs/")
        assert {key.split("/")[1] for key in keys} == {handle.id}
        samples, rate = sf.read(io.BytesIO(handle.audio_bytes()))
        assert rate > 0 and len(samples) > rate // 4


def test_warm_up_checks_every_name_first_and_loads_only_what_survives_a_fork_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = Context(in_process(tmp_path).with_(warmup_models=("local", "vibevoice-huge")))
    with pytest.raises(ModelError, match=r"^NARRATOR_WARMUP_MODELS names unknown model 'vibevoice-huge' \(known: "):
        context.warm_up()
    with pytest.raises(ModelError, match=r"^NARRATOR_DEFAULT_MODEL names unknown model 'nope'"):
        Context(in_process(tmp_path).with_(default_model="nope")).warm_up(("nope",))

    loaded: list[str] = []

    class Engine:
        def __init__(self, name: str) -> None:
            self.name = name

        def warm_up(self) -> None:
            loaded.append(self.name)

    monkeypatch.setattr(Context, "engine", lambda self, spec: Engine(spec.name))
    context = Context(in_process(tmp_path).with_(warmup_models=("local",)))
    context.warm_up(before_fork=True)
    assert loaded == [], "onnxruntime does not survive a fork: the embedded model loads in the pool processes"
    context.warm_up()
    assert loaded == ["local"]


def test_a_task_names_its_job() -> None:
    dashed = "01234567-89ab-cdef-0123-456789abcdef"
    assert job_id_of(JOB_TASK, dashed, (), {"request": {}}) == JOB
    assert job_id_of(STAGE_TASK, "x-stage", (JOB, None), {}) == JOB
    assert job_id_of(CHUNK_TASK, "x-chunk-00001", (JOB, 1), {}) == JOB
    assert job_id_of("narrator.upload", "u", ({"key": "k"},), {"job_id": JOB}) == JOB
    assert job_id_of("narrator.upload", "u", (None,), {}) == ""
    assert job_id_of("other.task", "t", ("not a job",), {}) == ""


def test_broker_errors_lose_their_credentials() -> None:
    assert no_secrets(OSError("cannot reach redis://:hunter2@h:6379/0")) == "cannot reach redis://***@h:6379/0"


def test_an_in_process_failure_is_in_storage_for_other_processes(tmp_path: Path) -> None:
    from narrator.errors import JobFailed
    from narrator.result import JobState
    from tests.support.procs import free_port

    settings = in_process(tmp_path).with_(comfy_url=f"http://127.0.0.1:{free_port()}", comfy_timeout=2.0)
    handle = jobs.submit({"text": "Nobody is listening on that port.", "model": "vibevoice-1.5b"}, settings)
    with pytest.raises(JobFailed, match="unreachable"):
        handle.wait(timeout=60)
    # A fresh handle, as `narrator status` in another shell: it reads storage only.
    other = jobs.JobHandle(handle.id, settings)
    assert other.status() == JobState.FAILURE
    assert "unreachable" in (other.progress().error or "")
