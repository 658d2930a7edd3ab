"""Just enough of Dockerfile, .dockerignore and Compose semantics to check ours without Docker."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<word>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    command: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse(text: str) -> list[Instruction]:
    """Instructions with their line numbers; comments dropped, continuations joined."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        command, _, args = " ".join(p for p in pending if p).partition(" ")
        out.append(Instruction(command.upper(), args.strip(), start))
        pending = []
    if pending:
        raise ValueError(f"line {start}: the instruction never ends (trailing backslash)")
    return out


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``$X``, ``${X}``, ``${X:-default}`` as Docker (and Compose) expand them; unknown -> ''."""

    def one(m: re.Match[str]) -> str:
        name = str(m.group("braced") or m.group("bare"))
        value = values.get(name, "")
        op = m.group("op") or ""
        if op in (":-", "-") and not value:
            return m.group("word") or ""
        if op in (":?", "?") and not value:
            raise KeyError(f"{name} is required: {m.group('word')}")
        if op in (":+", "+"):
            return (m.group("word") or "") if value else ""
        return value

    return _VAR.sub(one, text)


def stages(instructions: list[Instruction], build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Build stages with their base images resolved (ARGs before the first FROM are in scope)."""
    args = dict(build_args or {})
    out: list[Stage] = []
    for ins in instructions:
        if ins.command == "ARG" and not out:
            arg, _, default = ins.args.partition("=")
            args.setdefault(arg.strip(), default.strip().strip('"'))
        elif ins.command == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            out.append(Stage(substitute(words[0], args), alias))
        elif out:
            out[-1].instructions.append(ins)
    return out


def image_tag(image: str) -> str | None:
    """The tag of ``name[:tag][@digest]`` (a digest counts as a pin), or None."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


def copy_args(ins: Instruction) -> Copy:
    """COPY/ADD sources, destination and ``--from``; exec (JSON) and shell forms."""
    text = ins.args
    flags: dict[str, str] = {}
    while text.startswith("--"):
        flag, _, text = text.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key] = value
        text = text.lstrip()
    words = json.loads(text) if text.startswith("[") else shlex.split(text)
    return Copy(tuple(words[:-1]), words[-1], flags.get("from"))


@dataclass
class DockerIgnore:
    patterns: list[tuple[bool, str]]

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        patterns = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            patterns.append((negate, str(PurePosixPath(pattern.strip("/")))))
        return cls(patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context) is left out; the last matching line wins,
        and a path is out when it or any folder above it is matched by an excluding line."""
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for negate, pattern in self.patterns:
            if any(_match(pattern, c) for c in candidates):
                result = not negate
        return result


def _match(pattern: str, path: str) -> bool:
    if "**" in pattern:
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        return re.fullmatch(regex, path) is not None
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def variables_read(script: str) -> set[str]:
    """Upper-case variables a shell script expands (``$X``, ``${X...}``), its own locals excluded."""
    names = {m.group("braced") or m.group("bare") for m in _VAR.finditer(script)}
    return {n for n in names if n.isupper() and n not in {"PATH", "HOME"}}
