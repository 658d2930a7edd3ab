"""The context tasks run in: settings, object store, model registry, engines, manifest cache, run mode.

One :class:`Context` per process, reached through one accessor, :func:`current`. The
entry point that owns the process (the worker's app module, the RunPod handler) makes
it from its settings with :func:`init`; anywhere else it is made from the environment on
first use. Everything in it is built lazily, once, so importing the tasks costs nothing.

A producer that submits with settings of its own (``submit(request, settings)``: the CLI,
a test, a backend embedding narrator) gets the context of those settings from
:func:`context_for`, made once per distinct settings. A job run in-process runs *under*
that context (:func:`bound`), so two jobs with different settings in one process never
see each other's store.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from ..engines import Engine, get_engine, new_engine
from ..errors import ModelError
from ..job.store import JobStore, Manifest
from ..models import ModelRegistry, ModelSpec
from ..settings import Settings
from ..storage import ObjectStore, open_store

if TYPE_CHECKING:
    from .mode import RunMode

log = logging.getLogger(__name__)

_MANIFESTS = 8
#: Contexts of settings other than the process's own, kept for reuse (tests, embedding code).
_OTHERS = 8

T = TypeVar("T")


class Context:
    """What a task needs besides its arguments; every part is made on first use, once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._parts: dict[str, object] = {}
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()

    def __repr__(self) -> str:
        return f"Context({self.settings.effective_storage_url!r}, mode={self.mode.name!r})"

    def _once(self, name: str, make: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = make()
            return self._parts[name]  # type: ignore[return-value]  # a name's part is only ever made by its make

    @property
    def store(self) -> ObjectStore:
        return self._once("store", lambda: open_store(self.settings))

    @property
    def registry(self) -> ModelRegistry:
        return self._once("registry", lambda: ModelRegistry.from_dir(self.settings.workflows_dir))

    @property
    def mode(self) -> RunMode:
        """How jobs of these settings run: in this process, or through the broker (tasks/mode.py)."""
        from .mode import run_mode

        return self._once("mode", lambda: run_mode(self))

    def model(self, name: str, setting: str = "") -> ModelSpec:
        """The installed model ``name``; a ModelError naming the known ones (and ``setting``) if none."""
        spec = self.registry.get(name)
        if spec is None:
            known = ", ".join(self.registry.names()) or "none"
            where = f"{setting} names unknown model" if setting else "unknown model"
            raise ModelError(f"{where} {name!r} (known: {known})")
        return spec

    def engine(self, spec: ModelSpec) -> Engine:
        """The process-wide engine of a model: a model loads once per process, not per chunk or job."""
        return get_engine(spec, self.settings)

    def manifest(self, job_id: str) -> Manifest:
        """A job's manifest, read once per process: it does not change after staging."""
        with self._lock:
            cached = self._manifests.get(job_id)
        if cached is not None:
            return cached
        manifest = JobStore(self.store, job_id).manifest()
        with self._lock:
            self._manifests[job_id] = manifest
            while len(self._manifests) > _MANIFESTS:
                self._manifests.popitem(last=False)
        return manifest

    def warm_up(self, names: Sequence[str] | None = None, *, before_fork: bool = False) -> None:
        """Load models before the first job takes them: ``names``, by default NARRATOR_WARMUP_MODELS.

        Every name is checked first, so a misspelt one fails the warm-up before any model
        loads. ``before_fork`` is a worker's main process, before its pool forks: only what
        survives a fork happens there, so a ComfyUI model is warmed up through an engine of
        its own, closed afterwards (the server keeps the model loaded), and in-process
        models (onnxruntime does not survive a fork) load in each pool process instead.
        Otherwise every model's process-wide engine loads (:meth:`engine`).
        """
        names = self.settings.warmup_models if names is None else tuple(names)
        specs = [self.model(name, self._setting_naming(name)) for name in names]
        for spec in specs:
            if before_fork and spec.engine != "comfyui":
                continue
            log.info("warming up %s", spec.name, extra={"model": spec.name, "comfy_url": self.settings.comfy_url}
                     if spec.engine == "comfyui" else {"model": spec.name})
            if before_fork:
                engine = new_engine(spec, self.settings)
                try:
                    engine.warm_up()
                finally:
                    engine.close()
            else:
                self.engine(spec).warm_up()
            log.info("warmed up %s", spec.name, extra={"model": spec.name})

    def _setting_naming(self, name: str) -> str:
        if name in self.settings.warmup_models:
            return "NARRATOR_WARMUP_MODELS"
        return "NARRATOR_DEFAULT_MODEL" if name == self.settings.default_model else ""


_lock = threading.Lock()
_process: Context | None = None
_others: OrderedDict[Settings, Context] = OrderedDict()
_bound: ContextVar[Context | None] = ContextVar("narrator_context", default=None)


def init(settings: Settings) -> Context:
    """Make ``settings`` this process's context: once, by the entry point that owns the process."""
    global _process
    with _lock:
        if _process is None:
            _process = _others.pop(settings, None) or Context(settings)
        elif _process.settings != settings:
            raise RuntimeError("this process's context is already set, with other settings")
        return _process


def current() -> Context:
    """The context of the job running in this thread, else the process's (from the environment if unset)."""
    bound_here = _bound.get()
    if bound_here is not None:
        return bound_here
    if _process is None:
        return init(Settings.from_env())
    return _process


def context_for(settings: Settings) -> Context:
    """The context of ``settings``: the process's own when they are its settings, else one made once."""
    with _lock:
        if _process is not None and _process.settings == settings:
            return _process
        context = _others.get(settings)
        if context is None:
            context = _others[settings] = Context(settings)
        _others.move_to_end(settings)
        while len(_others) > _OTHERS:
            _others.popitem(last=False)
        return context


@contextlib.contextmanager
def bound(context: Context) -> Iterator[Context]:
    """Run the block (a job in this thread) under ``context``: :func:`current` returns it."""
    token = _bound.set(context)
    try:
        yield context
    finally:
        _bound.reset(token)
