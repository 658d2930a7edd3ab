"""Per-process state of the tasks: settings, model registry, object store.

Set once by the entry point (the worker's app module, the CLI, the RunPod
handler); built lazily so importing the tasks costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

from ..job import jobdata
from ..models import ModelRegistry
from ..settings import Settings
from ..storage import ObjectStore, open_store

_MANIFESTS = 8


@dataclass
class Runtime:
    settings: Settings
    _manifests: OrderedDict[str, jobdata.Manifest] = field(default_factory=OrderedDict)

    def manifest(self, job_id: str) -> jobdata.Manifest:
        """A job's manifest, read once per process: it does not change after staging."""
        with _lock:
            cached = self._manifests.get(job_id)
        if cached is not None:
            return cached
        manifest = jobdata.read_manifest(self.store, job_id)
        with _lock:
            self._manifests[job_id] = manifest
            while len(self._manifests) > _MANIFESTS:
                self._manifests.popitem(last=False)
        return manifest

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
