from pathlib import Path

import pytest

from narrator.errors import ConfigurationError, InvalidRequest
from narrator.settings import Settings
from narrator.tasks.app import celery_config, configure


def test_reads_narrator_env() -> None:
    s = Settings.from_env(
        {
            "NARRATOR_BROKER_URL": "redis://h:1/0",
            "NARRATOR_WORKFLOWS_DIR": "/tmp/w",
            "NARRATOR_CHUNK_TIME_LIMIT": "100",
            "NARRATOR_FETCH_ALLOW": "10.0.0.0/8, files.local",
            "NARRATOR_LOG_JSON": "true",
            "OTHER": "ignored",
        }
    )
    assert s.broker_url == "redis://h:1/0"
    assert s.effective_result_backend == "redis://h:1/0"
    assert s.workflows_dir == Path("/tmp/w")
    assert s.chunk_time_limit == 100
    assert s.fetch_allow == ("10.0.0.0/8", "files.local")
    assert s.log_json is True
    assert not s.eager


def test_empty_env_is_eager_with_local_storage() -> None:
    s = Settings.from_env({})
    assert s.eager
    assert s.effective_storage_url.startswith("file://")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(InvalidRequest, match="NARRATOR_CHUNK_TIME_LIMIT"):
        Settings.from_env({"NARRATOR_CHUNK_TIME_LIMIT": "soon"})


def test_broker_settings_follow_from_idempotent_chunks() -> None:
    conf = celery_config(Settings(broker_url="redis://x/0", chunk_time_limit=700))
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] > 700
    assert conf["task_routes"]["narrator.synthesize_chunk"]["queue"] == "narrator.gpu"


# An SQS broker: refused without a result backend, queue URLs parsed and checked (narrator/tasks/sqs.py).

CPU_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-narrator-cpu"
GPU_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod-narrator-gpu"
SQS = Settings(broker_url="sqs://", result_backend="redis://r:6379/0")


def test_sqs_queues_read_from_env() -> None:
    s = Settings.from_env({"NARRATOR_SQS_QUEUES": f"narrator.cpu={CPU_URL}, narrator.gpu={GPU_URL}"})
    assert s.sqs_queues == (f"narrator.cpu={CPU_URL}", f"narrator.gpu={GPU_URL}")


@pytest.mark.parametrize("broker", ["sqs://", "sqs://KEY:SECRET@sqs.eu-west-1.amazonaws.com"])
def test_sqs_without_result_backend_is_refused_where_celery_is_configured(broker: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^NARRATOR_RESULT_BACKEND: an SQS broker needs a result backend"):
        configure(Settings(broker_url=broker))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((f"narrator.cpu {CPU_URL}",), "is not queue=URL"),
        ((f"={CPU_URL}",), "is not queue=URL"),
        (("narrator.cpu=",), "is not queue=URL"),
        ((f"narrator.cpu={CPU_URL}",), "no URL for narrator.gpu"),
        ((f"narrator.io={GPU_URL}",), "unknown queue 'narrator.io'"),
        ((f"narrator.cpu={CPU_URL}", f"narrator.cpu={GPU_URL}"), "narrator.cpu is given twice"),
        (("narrator.cpu=sqs.eu-west-1.amazonaws.com/1/q", f"narrator.gpu={GPU_URL}"), "not an http"),
        ((f"narrator.cpu={CPU_URL}.fifo", f"narrator.gpu={GPU_URL}"), "does not end in a standard queue's name"),
        ((f"narrator.cpu={CPU_URL}", "narrator.gpu=https://sqs.eu-west-1.amazonaws.com/"), "standard queue's name"),
    ],
)
def test_bad_sqs_queues_name_the_variable(entries: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^NARRATOR_SQS_QUEUES: ") as caught:
        configure(SQS.with_(sqs_queues=entries))
    assert message in str(caught.value)


def test_sqs_queues_without_an_sqs_broker_are_refused() -> None:
    settings = Settings(broker_url="redis://x/0", sqs_queues=(f"narrator.cpu={CPU_URL}", f"narrator.gpu={GPU_URL}"))
    with pytest.raises(ConfigurationError, match="^NARRATOR_SQS_QUEUES: set, but NARRATOR_BROKER_URL is not sqs://"):
        configure(settings)


def test_sqs_queue_urls_become_kombu_predefined_queues() -> None:
    options = celery_config(SQS.with_(sqs_queues=(f"narrator.cpu={CPU_URL}", f"narrator.gpu={GPU_URL}")))[
        "broker_transport_options"
    ]
    # kombu looks a predefined queue up by narrator's name and by its SQS name (no dots).
    assert options["predefined_queues"] == {
        "narrator.cpu": {"url": CPU_URL},
        "narrator-cpu": {"url": CPU_URL},
        "narrator.gpu": {"url": GPU_URL},
        "narrator-gpu": {"url": GPU_URL},
    }
    assert options["visibility_timeout"] == 2 * SQS.chunk_time_limit + 60
    assert "predefined_queues" not in celery_config(SQS)["broker_transport_options"]


@pytest.mark.parametrize(("limit", "accepted"), [(21570, True), (21571, False)])
def test_sqs_caps_the_chunk_time_limit_at_its_visibility_maximum(limit: int, accepted: bool) -> None:
    settings = SQS.with_(chunk_time_limit=limit)
    if accepted:
        assert celery_config(settings)["broker_transport_options"]["visibility_timeout"] == 43200
        return
    with pytest.raises(ConfigurationError, match="^NARRATOR_CHUNK_TIME_LIMIT: .* at most 21570 with an SQS broker"):
        celery_config(settings)
