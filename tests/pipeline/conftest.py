from __future__ import annotations

from pathlib import Path

import pytest

from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.support.procs import RedisServer


@pytest.fixture
def broker_settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    """Settings for a job through the real Redis with file storage in this test's folder."""
    redis_server.flush()
    return Settings(
        broker_url=redis_server.url,
        storage_url=(tmp_path / "store").as_uri(),
        workflows_dir=PROJECT_WORKFLOWS,
    )
