"""Per-process state of the tasks: settings, model registry, object store.

Set once by the entry point (the worker's app module, the CLI, the RunPod
handler); built lazily so importing the tasks costs nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from ..models import ModelRegistry
from ..settings import Settings
from ..storage import ObjectStore, open_store


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry.from_dir(self.settings.workflows_dir)

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)


_lock = threading.Lock()
_current: Runtime | None = None


def set_settings(settings: Settings) -> None:
    global _current
    with _lock:
        _current = Runtime(settings)


def current() -> Runtime:
    global _current
    with _lock:
        if _current is None:
            _current = Runtime(Settings.from_env())
        return _current
