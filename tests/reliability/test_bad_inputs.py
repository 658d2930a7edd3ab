"""The bad-input corpus through every way in: ``submit()``, the RunPod handler, a foreign ``send_task``.

Every case must be refused with an InvalidRequest whose message starts with the
field's dotted path, before anything is queued (the real Redis broker's queues
stay empty and it gains no key) or written (the storage listing is unchanged);
afterwards the same process and worker still run a good job. Names that reach
storage keys, ComfyUI uploads or file paths are generated, whatever the request says.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from celery import Celery

from narrator import jobs, runpod_handler
from narrator.errors import InvalidRequest
from narrator.job.store import JobStore
from narrator.result import JobState
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import ObjectStore, open_store
from tests.fakes.comfyui import FakeComfy
from tests.reliability.conftest import BrokerState, Workers, broker_state
from tests.reliability.corpus import FIELDS, FOREIGN, KINDS, b64, cases, good_wav
from tests.support.procs import RedisServer, Worker, wait_until

pytestmark = pytest.mark.integration

CASES = {case.id: case for case in cases(Settings())}
GOOD = {"text": "The corpus is done. This job must still be read aloud, start to end.", "output": {"format": "wav"}}


@dataclass
class CorpusEnv:
    settings: Settings
    store: ObjectStore

    def state(self) -> tuple[BrokerState, list[str]]:
        return broker_state(self.settings.broker_url), self.store.list("")


@pytest.fixture(scope="module")
def corpus_env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> CorpusEnv:
    redis_server.flush()
    settings = Settings(
        broker_url=redis_server.url,
        storage_url=(tmp_path_factory.mktemp("corpus") / "store").as_uri(),
        workflows_dir=PROJECT_WORKFLOWS,
        default_model="local",
    )
    return CorpusEnv(settings, open_store(settings))


@pytest.fixture(scope="module")
def corpus_comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeComfy]:
    with FakeComfy(tmp_path_factory.mktemp("comfyui")) as fake:
        yield fake


def worker_settings(env: CorpusEnv, comfy: FakeComfy) -> Settings:
    """The worker's: a ComfyUI, and loopback URLs allowed (admission in this process allows none)."""
    return env.settings.with_(comfy_url=comfy.url, fetch_allow=("127.0.0.1",))


@pytest.fixture(scope="module")
def corpus_worker(corpus_env: CorpusEnv, corpus_comfy: FakeComfy, module_workers: Workers) -> Worker:
    return module_workers.start(worker_settings(corpus_env, corpus_comfy), concurrency=2)


@pytest.fixture(scope="module")
def foreign_app(corpus_env: CorpusEnv) -> Iterator[Celery]:
    """A producer that knows only the task name and JSON."""
    url = corpus_env.settings.broker_url
    app = Celery("foreign-producer", broker=url, backend=url)
    yield app
    app.close()


def handle_in_runpod(request: Any, settings: Settings, request_id: str = "req") -> dict[str, Any]:
    runpod_handler.configure(settings, post_updates=False)
    return runpod_handler.handler({"id": request_id, "input": request})


def test_the_corpus_covers_what_the_issue_lists() -> None:
    assert len(CASES) >= 60
    assert {case.kind for case in CASES.values()} >= KINDS
    wrong_types = {case.field for case in CASES.values() if case.kind == "wrong type"}
    assert set(FIELDS) <= wrong_types, f"no wrong-type case for {sorted(set(FIELDS) - wrong_types)}"


@pytest.mark.parametrize("case_id", list(CASES))
def test_submit_refuses_before_anything_is_queued(case_id: str, corpus_env: CorpusEnv) -> None:
    case = CASES[case_id]
    before = corpus_env.state()
    with pytest.raises(InvalidRequest) as info:
        jobs.submit(case.build(), corpus_env.settings)
    assert info.value.field == case.field
    assert str(info.value).startswith(f"{case.field}: "), str(info.value)[:300]
    broker, objects = corpus_env.state()
    assert broker.queued == {"narrator.cpu": 0, "narrator.gpu": 0}
    assert (broker, objects) == before


@pytest.mark.parametrize("case_id", list(CASES))
def test_runpod_handler_answers_with_the_field(case_id: str, corpus_env: CorpusEnv) -> None:
    case = CASES[case_id]
    before = corpus_env.state()
    out = handle_in_runpod(case.build(), corpus_env.settings, f"req-{case_id}")
    assert list(out) == ["error"]
    assert out["error"].startswith(f"{case.handler_field or case.field}: "), out["error"][:300]
    assert corpus_env.state() == before


def test_still_serving_after_the_corpus(corpus_env: CorpusEnv, corpus_worker: Worker) -> None:
    """The whole corpus again with a worker listening, then good jobs through both entries."""
    settings = corpus_env.settings
    before = corpus_env.state()
    jobs_before = job_ids(corpus_env.store)
    results_before = task_results(settings)
    for case in CASES.values():
        request = case.build()
        with pytest.raises(InvalidRequest):
            jobs.submit(request, settings)
        assert "error" in handle_in_runpod(request, settings)
    assert corpus_env.state() == before

    handle = jobs.submit(GOOD, settings)
    result = handle.wait(timeout=90)
    assert result.duration_seconds > 1.0 and corpus_env.store.size(result.output_key) > 10_000
    out = handle_in_runpod(GOOD, settings, "good")
    assert out.get("error") is None and out["duration_seconds"] > 1.0, out

    # Nothing but the two good jobs ran: storage and the result backend know of no other new job.
    good = {handle.id, out["job_id"]}
    assert job_ids(corpus_env.store) - jobs_before == good
    results = task_results(settings) - results_before
    assert results and all(r.replace("-", "")[:32] in good for r in results), results


def job_ids(store: ObjectStore) -> set[str]:
    return {key.split("/")[1] for key in store.list("jobs/")}


def task_results(settings: Settings) -> set[str]:
    """Task ids the result backend holds a result for."""
    prefix = "celery-task-meta-"
    return {k.removeprefix(prefix) for k in broker_state(settings.broker_url).keys if k.startswith(prefix)}


@pytest.mark.parametrize("case_id", FOREIGN)
def test_foreign_producer_job_fails_naming_the_field(
    case_id: str, corpus_env: CorpusEnv, corpus_worker: Worker, foreign_app: Celery
) -> None:
    case = CASES[case_id]
    before = set(corpus_env.store.list(""))
    result = foreign_app.send_task("narrator.job", kwargs={"request": case.build()}, queue="narrator.cpu")
    settled(result, corpus_worker)
    assert result.state == "FAILURE", corpus_worker.logs()[-3000:]
    assert str(result.result).startswith(f"{case.field}: "), result.result
    # The failure is recorded where every waiter looks; nothing else is written.
    job = JobStore(corpus_env.store, result.id.replace("-", ""))
    written = set(corpus_env.store.list("")) - before
    assert written == {job.error_key}, written
    error = job.error()
    assert error is not None and error.error.startswith(f"{case.field}: ")
    assert jobs.get(job.job_id, corpus_env.settings).progress().state is JobState.FAILURE


def test_foreign_task_id_cannot_name_a_storage_path(
    corpus_env: CorpusEnv, corpus_worker: Worker, foreign_app: Celery
) -> None:
    """A producer picks the task id, and the job id is derived from it: a path is refused, not used."""
    before = corpus_env.store.list("")
    result = foreign_app.send_task("narrator.job", kwargs={"request": GOOD}, queue="narrator.cpu",
                                   task_id="../../../etc/passwd")
    settled(result, corpus_worker)
    assert result.state == "FAILURE" and "not a job id" in str(result.result)
    assert corpus_env.store.list("") == before


def settled(result: Any, worker: Worker, timeout: float = 60) -> None:
    try:
        wait_until(result.ready, timeout, f"task {result.id} to settle")
    except AssertionError:
        log = worker.logs()[-3000:]
        raise AssertionError(f"task {result.id} is still {result.state}; worker log:\n{log}") from None


# -- generated names ----------------------------------------------------------------------

TRICKY_SPEAKERS = {"../../etc/passwd": 1, "..\\..\\boot.ini": 2, "C:/Windows/x": 3}
TRICKY_SCRIPT = (
    "../../etc/passwd: Good morning to you all, it is a fine day for a reading.\n"
    "..\\..\\boot.ini: And good morning to you, my old friend from the coast.\n"
    "C:/Windows/x: Shall we begin the meeting now, before the tea goes cold?"
)


@pytest.fixture
def voice_origin() -> Iterator[str]:
    """An HTTP server that answers any path (however odd) with a WAV voice."""
    body = good_wav()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_storage_keys_and_uploads_are_generated_names(
    corpus_env: CorpusEnv, corpus_comfy: FakeComfy, corpus_worker: Worker, voice_origin: str
) -> None:
    """Voices by stored name, base64 and URL, speaker names that are paths: only generated names come out."""
    settings = worker_settings(corpus_env, corpus_comfy)
    request = {
        "text": TRICKY_SCRIPT,
        "model": "vibevoice-large",
        "speakers": TRICKY_SPEAKERS,
        "voices": {
            "1": "narrator-default",
            "2": "data:audio/wav;base64," + b64(good_wav()),
            "3": f"{voice_origin}/../../etc/passwd%00.wav?name=../../../x.wav",
        },
        "output": {"format": "wav"},
    }
    handle = jobs.submit(request, settings)
    result = handle.wait(timeout=60)
    assert result.chunks == 3

    job = re.escape(handle.id)
    generated = re.compile(
        rf"^jobs/{job}/(request\.json|manifest\.json|staged/\d+|voices/[1-4]\.wav|chunks/\d{{5}}\.flac|done/\d{{5}}-\d+-[cs]"
        rf"|work/(joined\.wav|captions\.(srt|vtt))|output\.(wav|srt|vtt)|result\.json)$"
        r"|^cache/[0-9a-f]{2}/[0-9a-f]{64}\.flac$"
    )
    keys = [k for k in corpus_env.store.list("") if not k.startswith("jobs/") or k.startswith(f"jobs/{handle.id}/")]
    assert keys and [k for k in keys if not generated.match(k)] == []
    assert {f"jobs/{handle.id}/voices/{n}.wav" for n in (1, 2, 3)} <= set(keys)

    uploads = corpus_comfy.stats.uploads
    assert uploads and all(re.fullmatch(r"narrator/[0-9a-f]{64}\.wav", name) for name in uploads), uploads
    bound = {
        node["inputs"]["audio"]
        for prompt in corpus_comfy.stats.prompts
        for node in prompt.values()
        if node.get("class_type") == "LoadAudio"
    }
    assert bound and bound <= set(uploads), bound
