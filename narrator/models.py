"""Model files: ``workflows/<name>.toml`` say which engine runs a model and how.

A model file names its engine, its workflow (ComfyUI models), its audio format and
chunk size, which job parameters it binds, and its defaults. Adding a model is
adding files to the workflows folder; no code changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ModelError

#: Job parameters that carry content rather than a setting.
CONTENT_PARAMS = frozenset({"text", "voice"})


class Binding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str
    """A node's ``_meta.title``, else a class_type that is unique in the workflow."""
    input: str


class WeightsSpec(BaseModel):
    """The files a node pack's loader reads for one model, so a server can be checked for them.

    ``files`` are paths under ComfyUI's model folder ``folder`` (what ``GET /models/{folder}``
    lists); the weight shards the index names are found beside them. docs/gpu.md has the
    loader's lookup rules these follow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: str
    files: tuple[str, ...] = Field(min_length=1)


class RunPodTarget(BaseModel):
    """Where a ``runpod`` model's chunks go: a serverless endpoint running narrator's GPU image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    """The endpoint id (the API key comes from NARRATOR_RUNPOD_API_KEY, never from here)."""
    model: str = Field(min_length=1)
    """The model the endpoint runs: its own model file of that name does the work."""
    queue_timeout: float = Field(300.0, gt=0)
    """Seconds a chunk may wait for a free worker before the job fails, saying so."""


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    engine: str
    workflow: str | None = None
    sample_rate: int = Field(24000, ge=8000, le=192000)
    speakers: int = Field(1, ge=1, le=16)
    voice_cloning: bool = False
    words_per_minute: float = Field(150.0, ge=30, le=600)
    """How fast the model speaks, for estimates (``narrator chunk``): measured, or a common default."""
    verify: Literal["off", "report", "retry"] = "off"
    """Each chunk's speech checked against its text (narrator.verify): off, checked and reported,
    or checked and synthesized again when it fails. A request's ``verify`` overrides it."""
    verify_attempts: int = Field(3, ge=1, le=10)
    """Syntheses of one chunk at most, the first included, when ``verify`` is ``retry``."""
    speaker_format: str = "{text}"
    max_chunk_chars: int = Field(1200, ge=20, le=100_000)
    min_chunk_chars: int = Field(0, ge=0)
    languages: tuple[str, ...] = ("en",)
    parameters: tuple[str, ...] = ()
    """Settings an engine without bindings understands (the embedded engine)."""
    node_pack: str = ""
    """The node pack the workflow needs, as ``owner/repo@commit``: the one the images install."""
    weights: WeightsSpec | None = None
    runpod: RunPodTarget | None = None
    """For ``engine = "runpod"``: the endpoint each chunk is sent to."""
    bind: dict[str, Binding] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    source: Path | None = None

    @property
    def supported_parameters(self) -> frozenset[str]:
        """Voice settings a request may set for this model."""
        bound = {k for k in self.bind if k not in CONTENT_PARAMS and not k.startswith("voice_")}
        return frozenset(bound) | frozenset(self.parameters)

    def workflow_path(self) -> Path | None:
        if self.workflow is None or self.source is None:
            return None
        return self.source.parent / self.workflow


def load_model_file(path: Path) -> ModelSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path.name}: cannot read model file: {exc}") from exc
    data.setdefault("name", path.stem)
    try:
        spec = ModelSpec.model_validate({**data, "source": path})
    except ValidationError as exc:
        raise ModelError(f"{path.name}: {_first_error(exc)}") from exc
    if spec.name != path.stem:
        raise ModelError(f"{path.name}: name {spec.name!r} must match the file name")
    return spec


def load_folder(directory: Path) -> tuple[list[ModelSpec], list[str]]:
    """Every model file of a folder that loads, and one line for each that does not."""
    if not directory.is_dir():
        return [], [f"workflows folder {directory} does not exist"]
    specs, problems = [], []
    for path in sorted(directory.glob("*.toml")):
        try:
            specs.append(load_model_file(path))
        except ModelError as exc:
            problems.append(str(exc))
    return specs, problems


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}"


class ModelRegistry:
    """The model files of one workflows folder, read once."""

    def __init__(self, specs: dict[str, ModelSpec]) -> None:
        self._specs = specs

    @classmethod
    def from_dir(cls, directory: Path) -> ModelRegistry:
        if not directory.is_dir():
            raise ModelError(f"workflows folder {directory} does not exist")
        specs = {p.stem: load_model_file(p) for p in sorted(directory.glob("*.toml"))}
        return cls(specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> ModelSpec | None:
        return self._specs.get(name)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs
