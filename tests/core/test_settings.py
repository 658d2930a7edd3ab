from pathlib import Path

import pytest

from narrator.errors import InvalidRequest
from narrator.settings import Settings
from narrator.tasks.app import celery_config


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
