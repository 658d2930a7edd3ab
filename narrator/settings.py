"""Settings: read once, from ``NARRATOR_*`` environment variables, at an entry point.

Nothing below the entry points (CLI, Celery app module, RunPod handler) reads the
environment; they receive a :class:`Settings` instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import InvalidRequest

PROJECT_WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
SECRET_FIELDS = frozenset({"broker_url", "result_backend", "flower_basic_auth", "runpod_api_key"})
#: Variables other tools already use for the same thing, read when ours is unset.
FALLBACKS = {"runpod_api_key": "RUNPOD_API_KEY"}


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "narrator"


@dataclass(frozen=True)
class Settings:
    """Everything narrator is configured by. Field ``x`` reads ``NARRATOR_X``."""

    broker_url: str = ""
    """Celery broker (``redis://…``, ``sqs://``, ``amqp://…``). Empty: run in-process."""
    result_backend: str = ""
    """Celery result backend; defaults to the broker URL when that is Redis."""
    storage_url: str = ""
    """``file:///path`` or ``s3://bucket/prefix``. Empty: a folder under the user's data dir."""
    s3_endpoint_url: str = ""
    """S3 API endpoint for MinIO, R2 or moto; empty for AWS."""
    s3_region: str = "us-east-1"
    comfy_url: str = "http://127.0.0.1:8188"
    workflows_dir: Path = PROJECT_WORKFLOWS
    default_model: str = "local"
    max_text_chars: int = 2_000_000
    max_voice_bytes: int = 25 * 1024 * 1024
    max_voice_seconds: float = 600.0
    max_document_bytes: int = 200 * 1024 * 1024
    """The largest ``document`` (an EPUB, HTML, Markdown or text file) a request may give."""
    presign_max_seconds: int = 7 * 24 * 3600
    presign_default_seconds: int = 24 * 3600
    audio_b64_max_bytes: int = 10 * 1024 * 1024
    chunk_soft_time_limit: int = 600
    chunk_time_limit: int = 720
    chunk_max_retries: int = 5
    job_timeout: float = 3600.0
    job_retention: int = 7 * 24 * 3600
    """Seconds a job's results stay in the result backend; ``narrator gc`` expires storage at the same age."""
    fetch_allow: tuple[str, ...] = ()
    """Hosts or networks a URL input may reach although they are private."""
    sqs_queues: tuple[str, ...] = ()
    """``queue=URL`` pairs, one per narrator queue: existing SQS queues used as they are
    (kombu's ``predefined_queues``), so no process needs permission to create queues."""
    fetch_timeout: float = 30.0
    comfy_timeout: float = 600.0
    warmup_models: tuple[str, ...] = ()
    """Models a worker loads (and ComfyUI warms up) before it takes its first task."""
    ready_file: str = ""
    """A worker writes its state here (starting, ready, failed) and removes it when it stops;
    ``narrator health`` checks it, and the RunPod handler with a broker waits for it. Empty: none."""
    worker_name: str = ""
    """``narrator worker``'s node name (``NAME`` becomes ``NAME@<host>``); empty: ``<queues>-<n>@<host>``,
    the lowest slot on this host no live worker holds (ops/node_name.py)."""
    ready_timeout: float = 1800.0
    """How long the RunPod handler waits for ``ready_file`` to say ready before it exits."""
    metrics_port: int = 0
    """Port a worker serves Prometheus metrics on; 0: off."""
    metrics_addr: str = "127.0.0.1"
    log_json: bool = False
    verify: str = ""
    """``off``, ``report`` or ``retry``: whether a job that does not say is checked (``verify``);
    empty: each model's own default (its model file)."""
    verify_recogniser: str = "auto"
    """What hears chunks for ``verify``: ``pocketsphinx`` (English, any CPU, no download),
    ``whisper`` (faster-whisper; needs ``verify_whisper_model``), or ``auto``: Whisper when its
    model is configured, else pocketsphinx."""
    verify_whisper_model: str = ""
    """A CTranslate2 Whisper model folder (never downloaded at run time)."""
    verify_device: str = "auto"
    """Where Whisper runs: ``cpu``, ``cuda``, or ``auto`` (a GPU when there is one). On a GPU the
    check runs on the GPU worker, beside synthesis; on a CPU it runs on the CPU workers."""
    flower_basic_auth: str = field(default="", repr=False)
    runpod_api_key: str = field(default="", repr=False)
    """The RunPod API key for ``narrator runpod`` and the ``runpod`` engine; else ``RUNPOD_API_KEY``."""
    runpod_api_url: str = "https://api.runpod.ai/v2"
    """RunPod's serverless API (``/{endpoint}/run`` etc. below it)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # each parsed from the environment as its field's type says
        for f in fields(cls):
            raw = env.get(f"NARRATOR_{f.name.upper()}") or env.get(FALLBACKS.get(f.name, ""))
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def eager(self) -> bool:
        """No broker: the canvas runs in this process."""
        return not self.broker_url

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (_default_data_dir() / "storage").as_uri()

    @property
    def effective_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return ""


def _parse(name: str, annotation: object, raw: str) -> object:
    env_name = f"NARRATOR_{name.upper()}"
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw).expanduser()
        if kind.startswith("tuple"):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError:
        raise InvalidRequest(f"cannot parse {raw!r} as {kind}", field=env_name) from None
    return raw
