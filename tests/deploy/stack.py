"""compose.yaml and .env.example as data, the way Compose reads them, for the static checks.

compose-spec-2025-10-21.json is the Compose Specification's JSON schema (compose-spec/compose-spec,
Apache-2.0, schema/compose-spec.json at a08f8d5, 2025-10-21): the first one here that knows
``build.secrets`` and ``secrets.*.environment``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.dockerfile import substitute

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose-spec-2025-10-21.json")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def compose_raw() -> dict[str, Any]:
    return load(ROOT / "compose.yaml")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, with ``$$`` kept as a literal ``$``."""
    if isinstance(value, str):
        return substitute(value.replace("$$", "\0"), env).replace("\0", "$")
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate(compose_raw(), env_example() if env is None else env)  # type: ignore[no-any-return]


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]


def seconds(duration: str) -> float:
    """A Compose duration (``1m30s``, ``750s``, ``2h``) in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Compose duration: {duration!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file for what ours hold: mappings merge, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def active(services: dict[str, Any], profiles: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The services ``docker compose up`` starts with ``profiles`` enabled."""
    return {n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & profiles}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else list(command)
