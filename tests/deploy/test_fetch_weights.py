"""docker/fetch_weights.py, run as the GPU image runs it, against a fake Hugging Face Hub.

What it bakes is checked two ways: against the files the model files declare
(``[weights]`` in workflows/*.toml), and against the pinned node pack's own lookups
(:func:`loader_problems` replays wildminder/ComfyUI-VibeVoice's loader on the tree):
a folder passes when the loader would download nothing, fall back to nothing and
find every shard, with the Hugging Face cache gone.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from narrator.models import ModelRegistry
from tests.deploy.dockerfile import parse, stages
from tests.fakes.hf_hub import FakeHub, FakeRepo

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "fetch_weights.py"
DOCKERFILE = ROOT / "docker" / "Dockerfile.gpu"
DEADLINE = 120  # seconds for one fetch_weights run against the loopback fake
#: The interpreter that runs the script, as the image's ComfyUI Python does: this one (with the
#: huggingface_hub the dev extra pins) unless another is named, e.g. one with the image's version.
PYTHON = os.path.abspath(os.environ.get("NARRATOR_FETCH_WEIGHTS_PYTHON") or sys.executable)

# --- the pinned node pack's loader rules -------------------------------------------------------
PACK = "wildminder/ComfyUI-VibeVoice"
PINNED = "d04665d073dd9a587e682422deba5927e31ccac4"
#: modules/model_info.py (weights repos) and __init__.py:50-55 (tokenizer repo: "Large" in the name).
OFFICIAL = {
    "VibeVoice-1.5B": ("microsoft/VibeVoice-1.5B", "Qwen/Qwen2.5-1.5B"),
    "VibeVoice-Large": ("aoi-ot/VibeVoice-Large", "Qwen/Qwen2.5-7B"),
}
INDEX = "model.safetensors.index.json"


def loader_problems(tts: Path, model_name: str) -> list[str]:
    """What ``VibeVoiceLoader.load_model(model_name)`` at the pinned commit would do beyond reading
    files under ``tts`` (ComfyUI's first ``tts`` model folder): each Hub download it would start
    (under ``HF_HUB_OFFLINE=1`` a failure), each bundled default it would silently use instead of
    the model's own, each file ``from_pretrained`` would not find. ``[]``: it loads from disk alone.
    """
    folder = tts / "VibeVoice" / model_name  # loader.py:109 (+ :117 official, __init__.py:76-90 others)
    problems: list[str] = []
    if model_name in OFFICIAL:  # __init__.py:50-55: always offered, type "official"
        repo, tokenizer_repo = OFFICIAL[model_name]
        if not (folder / INDEX).is_file():  # loader.py:118-120
            problems.append(f"snapshot_download({repo}) into {model_name}/ (no {INDEX})")
    else:  # __init__.py:76-90: a folder is offered (type "local_dir") with config.json and weights
        files = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        weights = INDEX in files or any(f.endswith((".safetensors", ".bin")) for f in files)
        if not ("config.json" in files and weights):
            return [f"{model_name} is not offered: {folder} lacks config.json or weights"]
        tokenizer_repo = "Qwen/Qwen2.5-7B" if "large" in model_name.lower() else "Qwen/Qwen2.5-1.5B"  # :85
    if not (folder / "config.json").exists():  # loader.py:121, 135-141
        problems.append("the pack's bundled fallback config.json")
    if not (folder / "tokenizer.json").exists():  # loader.py:123, 144-149
        problems.append(f"hf_hub_download({tokenizer_repo}, tokenizer.json) into {model_name}/")
    if not (folder / "preprocessor_config.json").exists():  # loader.py:122, 151-156
        problems.append("default processor settings (no preprocessor_config.json)")
    # loader.py:192: transformers' from_pretrained(folder) reads the index and every shard it names
    if (folder / INDEX).is_file():
        weight_map = json.loads((folder / INDEX).read_text())["weight_map"]
        problems += [f"from_pretrained: no {s}" for s in sorted(set(weight_map.values())) if not (folder / s).is_file()]
    elif not (folder / "model.safetensors").is_file():
        problems.append("from_pretrained: no weights")
    return problems


# --- tiny repos --------------------------------------------------------------------------------
def safetensors(tensors: Mapping[str, list[float]]) -> bytes:
    """A valid safetensors file of little F32 tensors."""
    header: dict[str, object] = {}
    data = b""
    for name, values in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + data


def weights_repo(repo_id: str, *, drop: str | None = None, **kwargs: object) -> FakeRepo:
    """A VibeVoice-shaped repo: configs, an index naming two shards, the shards, a README."""
    shards = {
        "model-00001-of-00002.safetensors": {"model.language_model.embed_tokens.weight": [0.5, 1.5, 2.5]},
        "model-00002-of-00002.safetensors": {"model.acoustic_tokenizer.decoder.weight": [3.0, 4.0]},
    }
    index = {
        "metadata": {"total_size": 4 * sum(len(v) for t in shards.values() for v in t.values())},
        "weight_map": {name: shard for shard, tensors in shards.items() for name in tensors},
    }
    files = {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": f"# {repo_id}\n".encode(),
        "config.json": json.dumps({"model_type": "vibevoice", "_name_or_path": repo_id}).encode(),
        "preprocessor_config.json": json.dumps(
            {"processor_class": "VibeVoiceProcessor", "speech_tok_compress_ratio": 3200, "db_normalize": True}
        ).encode(),
        INDEX: json.dumps(index, indent=2).encode(),
        **{name: safetensors(tensors) for name, tensors in shards.items()},
    }
    files.pop(drop or "", None)
    return FakeRepo(repo_id, files, **kwargs)  # type: ignore[arg-type]


def qwen_repo(repo_id: str) -> FakeRepo:
    """A Qwen2.5-shaped repo: its own config and weights (which must not be fetched) and the tokenizer."""
    return FakeRepo(repo_id, {
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\ntokenizer.json filter=lfs\n",
        "LICENSE": b"Apache-2.0\n",
        "README.md": f"# {repo_id}\n".encode(),
        "config.json": json.dumps({"model_type": "qwen2", "_name_or_path": repo_id}).encode(),
        "generation_config.json": b"{}",
        "model-00001-of-00001.safetensors": safetensors({"lm_head.weight": [1.0]}),
        INDEX: json.dumps({"weight_map": {"lm_head.weight": "model-00001-of-00001.safetensors"}}).encode(),
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}, "repo": repo_id}).encode(),
        "tokenizer_config.json": json.dumps({"tokenizer_class": "Qwen2Tokenizer", "repo": repo_id}).encode(),
        "vocab.json": json.dumps({"hello": 0, "repo": 1}).encode(),
        "merges.txt": b"#version: 0.2\nh e\n",
    }, lfs=frozenset({"model-00001-of-00001.safetensors", "tokenizer.json"}))


TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"}


# --- running it ----------------------------------------------------------------------------------
@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    dest: Path
    hf_home: Path

    @property
    def tts(self) -> Path:
        """ComfyUI's models/tts: dest is models/tts/VibeVoice."""
        return self.dest.parent

    @property
    def last_error(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("fetch_weights:")]
        assert lines, f"no fetch_weights: line on stderr:\n{self.stderr}"
        return lines[-1]


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    repos = [weights_repo(repo) for repo, _ in OFFICIAL.values()]
    repos += [qwen_repo(tok) for tok in sorted({tok for _, tok in OFFICIAL.values()})]
    with FakeHub(repos) as fake:
        yield fake


def hub_env(hub: FakeHub, hf_home: Path, token: str | None = None) -> dict[str, str]:
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING_FACE_")) and k.lower() not in proxies}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def fetch(hub: FakeHub, tmp_path: Path, models: str, token: str | None = None) -> Run:
    dest = tmp_path / "comfyui" / "models" / "tts" / "VibeVoice"
    hf_home = tmp_path / "hf-home"
    proc = subprocess.run(
        [PYTHON, str(SCRIPT), "--models", models, "--dest", str(dest)],
        env=hub_env(hub, hf_home, token), cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, dest, hf_home)


def declared() -> dict[str, tuple[str, ...]]:
    """The files the project's model files say the loader reads, by model file name."""
    out = {}
    for spec in ModelRegistry.from_dir(ROOT / "workflows"):
        if spec.weights is not None:
            assert spec.node_pack == f"{PACK}@{PINNED}", f"{spec.name}: loader_problems replays {PINNED[:7]}"
            assert spec.weights.folder == "tts"
            out[spec.name] = spec.weights.files
    assert out, "no model file declares [weights]"
    return out


def declared_model_names() -> list[str]:
    """The node's model_name values the model files need: VibeVoice/<Name>/..."""
    return sorted({Path(f).parts[1] for files in declared().values() for f in files})


def served_names(hub: FakeHub) -> set[str]:
    return {Path(p).name for repo in hub.repos.values() for p in repo.files}


def assert_clean_hf_home(run: Run, hub: FakeHub) -> None:
    """Nothing the image needs is in the cache: no served file landed there (refs and locks may)."""
    leaked = [p for p in run.hf_home.rglob("*") if p.is_file() and p.name in served_names(hub)]
    assert not leaked, leaked


# --- the official models ----------------------------------------------------------------------
def test_official_models_are_baked_where_the_loader_reads_them(hub: FakeHub, tmp_path: Path) -> None:
    names = declared_model_names()
    assert set(names) == set(OFFICIAL)
    run = fetch(hub, tmp_path, ",".join(names))
    assert run.returncode == 0, run.stderr

    # every file the model files declare, and every shard their indexes name
    for model, files in declared().items():
        for rel in files:
            assert (run.tts / rel).is_file(), f"{model} declares {rel}: not baked"
            if rel.endswith(INDEX):
                folder = (run.tts / rel).parent
                for shard in set(json.loads((run.tts / rel).read_text())["weight_map"].values()):
                    assert (folder / shard).is_file(), f"{shard} named by {rel}"

    for name, (repo_id, tokenizer_id) in OFFICIAL.items():
        folder = run.dest / name
        repo, qwen = hub.repos[repo_id], hub.repos[tokenizer_id]
        for path, data in repo.files.items():  # the weights repo, byte for byte
            assert (folder / path).read_bytes() == data, path
        for path in TOKENIZER_FILES:  # the tokenizer of the Qwen repo the node would pick
            assert (folder / path).read_bytes() == qwen.files[path], path
        assert sorted(p.name for p in folder.iterdir()) == sorted(set(repo.files) | TOKENIZER_FILES)
        assert loader_problems(run.tts, name) == []
        assert f"{name}: complete" in run.stdout

    # the loader needs nothing from the cache
    assert_clean_hf_home(run, hub)
    shutil.rmtree(run.hf_home, ignore_errors=True)
    assert all(loader_problems(run.tts, name) == [] for name in OFFICIAL)

    # only the tokenizer files of the Qwen repos were asked for: never their config.json or weights
    for _, tokenizer_id in OFFICIAL.values():
        asked = {r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests_for(tokenizer_id)
                 if "/resolve/" in r.path}
        assert asked == TOKENIZER_FILES
    assert all(r.status in (200, 302) for r in hub.requests), [(r.method, r.path, r.status) for r in hub.requests]


def test_the_declared_files_are_all_the_loader_needs(hub: FakeHub, tmp_path: Path) -> None:
    """A folder with just what the model files declare (plus the shards the index names) loads offline."""
    run = fetch(hub, tmp_path, ",".join(declared_model_names()))
    assert run.returncode == 0, run.stderr
    only = tmp_path / "declared" / "tts"
    for files in declared().values():
        for rel in files:
            (only / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.tts / rel, only / rel)
            if rel.endswith(INDEX):
                for shard in set(json.loads((run.tts / rel).read_text())["weight_map"].values()):
                    shutil.copyfile((run.tts / rel).parent / shard, (only / rel).parent / shard)
    for name in declared_model_names():
        assert loader_problems(only, name) == []


def test_the_replay_sees_a_tokenizer_left_in_the_cache(hub: FakeHub, tmp_path: Path) -> None:
    """The old layout (tokenizer in HF_HOME, not in the folder) is what issue 11 was: the replay catches it."""
    run = fetch(hub, tmp_path, "VibeVoice-Large")
    assert run.returncode == 0, run.stderr
    (run.dest / "VibeVoice-Large" / "tokenizer.json").unlink()
    (run.dest / "VibeVoice-Large" / "model-00002-of-00002.safetensors").unlink()
    assert loader_problems(run.tts, "VibeVoice-Large") == [
        "hf_hub_download(Qwen/Qwen2.5-7B, tokenizer.json) into VibeVoice-Large/",
        "from_pretrained: no model-00002-of-00002.safetensors",
    ]
    (run.dest / "VibeVoice-Large" / INDEX).unlink()
    assert loader_problems(run.tts, "VibeVoice-Large")[0].startswith("snapshot_download(aoi-ot/VibeVoice-Large)")


def test_custom_models_get_the_tokenizer_the_node_would_pick(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(weights_repo("acme/vibevoice-ft"))
    hub.add(weights_repo("acme/vibevoice-7b-ft"))
    run = fetch(hub, tmp_path, "Narrator-FT=acme/vibevoice-ft, Narrator-large-FT=acme/vibevoice-7b-ft")
    assert run.returncode == 0, run.stderr
    for name, repo_id, tokenizer_id in [("Narrator-FT", "acme/vibevoice-ft", "Qwen/Qwen2.5-1.5B"),
                                        ("Narrator-large-FT", "acme/vibevoice-7b-ft", "Qwen/Qwen2.5-7B")]:
        folder = run.dest / name
        for path, data in hub.repos[repo_id].files.items():
            assert (folder / path).read_bytes() == data
        assert (folder / "tokenizer.json").read_bytes() == hub.repos[tokenizer_id].files["tokenizer.json"]
        assert loader_problems(run.tts, name) == []
    assert_clean_hf_home(run, hub)


def test_a_gated_repo_is_fetched_with_the_token_and_the_token_is_not_shown(hub: FakeHub, tmp_path: Path) -> None:
    token = "hf_" + os.urandom(12).hex()
    hub.tokens.add(token)
    hub.add(weights_repo("acme/gated-vv", gated=True, granted={token}))
    run = fetch(hub, tmp_path, "Gated=acme/gated-vv", token=token)
    assert run.returncode == 0, run.stderr
    assert loader_problems(run.tts, "Gated") == []
    for request in hub.requests:
        if request.host == FakeHub.BLOB_HOST:  # LFS blobs come from "another host": no credentials there
            assert request.authorization is None, request.path
        else:
            assert request.authorization == f"Bearer {token}", (request.method, request.path)
    assert any(r.host == FakeHub.BLOB_HOST for r in hub.requests)
    assert token not in run.stdout + run.stderr


# --- failures: one line, naming the repo or the file ---------------------------------------------
def test_an_unknown_model_name_is_refused_before_any_download(hub: FakeHub, tmp_path: Path) -> None:
    run = fetch(hub, tmp_path, "VibeVoice-1.5B,VibeVoice-7B")
    assert run.returncode == 2
    assert "unknown model 'VibeVoice-7B'" in run.last_error and "VibeVoice-7B=org/repo" in run.last_error
    assert hub.requests == []
    assert not run.dest.exists()


@pytest.mark.parametrize("models", ["=acme/x", "X=acme", "X=a/b/c", "a/b", "X=acme/x,X=acme/y"])
def test_a_malformed_model_list_is_refused(hub: FakeHub, tmp_path: Path, models: str) -> None:
    run = fetch(hub, tmp_path, models)
    assert run.returncode == 2, run.stderr
    assert hub.requests == []


def test_a_missing_repo_is_named(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(weights_repo("acme/gone", deny=404))
    run = fetch(hub, tmp_path, "Gone=acme/gone")
    assert run.returncode == 1
    assert run.last_error == "fetch_weights: acme/gone was not found (404): check the repo name"


def test_a_repo_unknown_without_a_token_suggests_one(hub: FakeHub, tmp_path: Path) -> None:
    run = fetch(hub, tmp_path, "Typo=acme/no-such-repo")
    assert run.returncode == 1
    assert "acme/no-such-repo was not found, or is private or gated (401)" in run.last_error
    assert "HF_TOKEN" in run.last_error


def test_a_gated_repo_without_a_token_asks_for_hf_token(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(weights_repo("acme/gated-vv", gated=True))
    run = fetch(hub, tmp_path, "Gated=acme/gated-vv")
    assert run.returncode == 1
    assert "acme/gated-vv is gated or private and needs authentication (401)" in run.last_error
    assert "build secret HF_TOKEN" in run.last_error
    assert next(r.status for r in hub.requests_for("acme/gated-vv") if r.method == "HEAD") == 401


def test_a_gated_repo_the_token_cannot_open_says_so_without_the_token(hub: FakeHub, tmp_path: Path) -> None:
    token = "hf_" + os.urandom(12).hex()
    hub.tokens.add(token)
    hub.add(weights_repo("acme/gated-vv", gated=True, granted={"hf_someone_else"}))
    run = fetch(hub, tmp_path, "Gated=acme/gated-vv", token=token)
    assert run.returncode == 1
    assert "acme/gated-vv is gated and the HF_TOKEN given has no access to it (403)" in run.last_error
    assert token not in run.stdout + run.stderr
    assert any(r.authorization == f"Bearer {token}" for r in hub.requests)


def test_a_refused_token_is_reported_without_the_token(hub: FakeHub, tmp_path: Path) -> None:
    token = "hf_" + os.urandom(12).hex()  # unknown to the fake: "Invalid credentials"
    run = fetch(hub, tmp_path, "VibeVoice-1.5B", token=token)
    assert run.returncode == 1
    assert "microsoft/VibeVoice-1.5B: the Hub refused the HF_TOKEN given (401)" in run.last_error
    assert token not in run.stdout + run.stderr


def test_a_shard_the_index_names_but_the_repo_lacks_is_named(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(weights_repo("acme/broken-vv", drop="model-00002-of-00002.safetensors"))
    run = fetch(hub, tmp_path, "Broken=acme/broken-vv")
    assert run.returncode == 1
    assert "model-00002-of-00002.safetensors (named by model.safetensors.index.json, from acme/broken-vv)" \
        in run.last_error


@pytest.mark.parametrize("drop", ["config.json", "preprocessor_config.json", INDEX])
def test_a_file_the_loader_reads_but_the_repo_lacks_is_named(hub: FakeHub, tmp_path: Path, drop: str) -> None:
    hub.add(weights_repo("acme/partial-vv", drop=drop))
    run = fetch(hub, tmp_path, "VibeVoice-1.5B=acme/partial-vv")
    assert run.returncode == 1
    assert f"lacks {drop} (from acme/partial-vv)" in run.last_error


def test_a_tokenizer_repo_without_tokenizer_json_is_named(hub: FakeHub, tmp_path: Path) -> None:
    qwen = hub.repos["Qwen/Qwen2.5-1.5B"]
    hub.add(FakeRepo(qwen.repo_id, {k: v for k, v in qwen.files.items() if k != "tokenizer.json"}))
    run = fetch(hub, tmp_path, "VibeVoice-1.5B")
    assert run.returncode == 1
    assert "lacks tokenizer.json (from Qwen/Qwen2.5-1.5B)" in run.last_error


# --- the image's build step ------------------------------------------------------------------------
def weights_run() -> str:
    """The shell command of the weights stage's RUN that calls fetch_weights.py."""
    stage = next(s for s in stages(parse(DOCKERFILE.read_text())) if s.name == "weights")
    runs = [i.args for i in stage.instructions if i.command == "RUN" and "fetch_weights.py" in i.args]
    assert len(runs) == 1
    command = runs[0]
    while command.startswith("--"):
        command = command.split(" ", 1)[1].lstrip()
    return command


def test_the_dockerfile_step_bakes_complete_folders(hub: FakeHub, tmp_path: Path) -> None:
    """The weights stage's own RUN line, paths mapped onto a temporary root, bakes what the loader reads."""
    stage = next(s for s in stages(parse(DOCKERFILE.read_text())) if s.name == "weights")
    args = dict(i.args.split("=", 1) for i in stage.instructions if i.command == "ARG" and "=" in i.args)
    dest = tmp_path / "comfyui" / "models" / "tts" / "VibeVoice"
    image_paths = {"/opt/venv/bin/python": PYTHON, "/tmp/fetch_weights.py": str(SCRIPT),
                   "/comfyui/models/tts/VibeVoice": str(dest), "/tmp/": f"{tmp_path}/"}
    command = re.sub("|".join(map(re.escape, image_paths)), lambda m: image_paths[m.group(0)], weights_run())
    env = hub_env(hub, tmp_path / "unused-hf-home")
    env.update({k: v.strip('"') for k, v in args.items()}, VIBEVOICE_MODELS=",".join(OFFICIAL))
    proc = subprocess.run(["sh", "-c", command], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=DEADLINE)
    assert proc.returncode == 0, proc.stderr
    for name in OFFICIAL:
        assert loader_problems(dest.parent, name) == []
    leftovers = [p for p in tmp_path.iterdir() if p.name not in {"comfyui", "unused-hf-home"}]
    assert leftovers == [], "the build's Hugging Face cache is scratch: removed in the same RUN"
    assert not (tmp_path / "unused-hf-home").exists(), "the RUN sets HF_HOME itself"


def test_the_final_image_takes_only_the_model_folders() -> None:
    text = DOCKERFILE.read_text()
    assert "--hf-home" not in text and "/opt/hf" not in text
    final = stages(parse(text))[-1]
    from_weights = [i.args for i in final.instructions if i.command == "COPY" and "--from=weights" in i.args]
    assert len(from_weights) == 1 and from_weights[0].split()[-2:] == ["/comfyui/models/tts/VibeVoice"] * 2


def test_the_tests_run_the_huggingface_hub_the_image_runs() -> None:
    """The fake answers the calls of the version the dev extra pins: the one the image's ComfyUI Python has."""
    from importlib.metadata import version

    pins = {}
    for path in (ROOT / "setup.cfg", ROOT / "docker" / "constraints-gpu.txt"):
        found = re.search(r"^\s*huggingface[-_]hub==(\S+)\s*$", path.read_text(), re.MULTILINE | re.IGNORECASE)
        assert found, f"{path.name} does not pin huggingface_hub"
        pins[path.name] = found.group(1)
    assert len(set(pins.values())) == 1, pins
    if PYTHON == os.path.abspath(sys.executable):
        assert version("huggingface_hub") == pins["setup.cfg"], "reinstall the dev extra"


def test_the_script_needs_only_huggingface_hub() -> None:
    """It runs with ComfyUI's Python in the image, where narrator is not installed."""
    tree = ast.parse(SCRIPT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert imported - sys.stdlib_module_names - {"__future__"} == {"huggingface_hub"}


# --- a RunPod network volume: docker/start-runpod.sh's weights step, run as the image runs it ----------
START = ROOT / "docker" / "start-runpod.sh"


@dataclass
class Boot:
    returncode: int
    stdout: str
    stderr: str
    dest: Path
    """The volume's models/tts/VibeVoice."""
    comfy_tts: Path
    """ComfyUI's models/tts, where the loader looks (through the links)."""

    @property
    def last_error(self) -> str:
        return Run(self.returncode, self.stdout, self.stderr, self.dest, self.dest).last_error


def boot_env(hub: FakeHub, tmp_path: Path, models: str) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = hub_env(hub, tmp_path / "unused-hf-home")
    env.update(RUNPOD_VOLUME=str(tmp_path / "runpod-volume"), COMFY_PYTHON=PYTHON, FETCH_WEIGHTS=str(SCRIPT),
               COMFY_MAIN=str(tmp_path / "comfyui" / "main.py"), VIBEVOICE_MODELS=models,
               TMPDIR=str(tmp_path / "tmp"), HF_HUB_OFFLINE="1")  # offline, as the image runs
    return env


def boot_result(tmp_path: Path, returncode: int, stdout: str, stderr: str) -> Boot:
    dest = tmp_path / "runpod-volume" / "narrator" / "models" / "tts" / "VibeVoice"
    return Boot(returncode, stdout, stderr, dest, tmp_path / "comfyui" / "models" / "tts")


def boot(hub: FakeHub, tmp_path: Path, models: str = "VibeVoice-Large", volume: bool = True) -> Boot:
    """One worker's boot: ``narrator-start-runpod weights``, the image's paths mapped under ``tmp_path``."""
    if volume:
        (tmp_path / "runpod-volume").mkdir(exist_ok=True)
    proc = subprocess.run(["bash", str(START), "weights"], env=boot_env(hub, tmp_path, models), cwd=tmp_path,
                          capture_output=True, text=True, timeout=DEADLINE)
    return boot_result(tmp_path, proc.returncode, proc.stdout, proc.stderr)


def blobs_fetched(hub: FakeHub) -> set[str]:
    return {r.path.rsplit("/", 1)[1] for r in hub.requests if r.host == FakeHub.BLOB_HOST and r.method == "GET"}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_served_from_the_volume(run: Boot, name: str) -> None:
    link = run.comfy_tts / "VibeVoice" / name
    assert link.is_symlink() and link.resolve() == (run.dest / name).resolve(), link
    assert loader_problems(run.comfy_tts, name) == []  # the node pack's own lookups, through the link
    assert not (run.dest / ".incoming").exists(), "a private download folder was left behind"


def test_a_volumes_first_boot_fetches_the_models_and_comfyui_reads_them_there(hub: FakeHub, tmp_path: Path) -> None:
    run = boot(hub, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_served_from_the_volume(run, "VibeVoice-Large")
    repo = hub.repos["aoi-ot/VibeVoice-Large"]
    for path, data in repo.files.items():
        assert (run.dest / "VibeVoice-Large" / path).read_bytes() == data, path
    assert list((tmp_path / "tmp").iterdir()) == [], "the Hugging Face scratch folder is removed"


def test_a_second_boot_with_the_weights_present_downloads_nothing(hub: FakeHub, tmp_path: Path) -> None:
    assert boot(hub, tmp_path).returncode == 0
    hub.requests.clear()
    run = boot(hub, tmp_path)
    assert run.returncode == 0, run.stderr
    assert hub.requests == [], [(r.method, r.path) for r in hub.requests]
    assert "VibeVoice-Large: complete in" in run.stdout and "nothing fetched" in run.stdout
    assert_served_from_the_volume(run, "VibeVoice-Large")


def test_a_new_model_needs_only_its_name(hub: FakeHub, tmp_path: Path) -> None:
    """Another model on the same volume: named in VIBEVOICE_MODELS, fetched at the next boot; the first is kept."""
    assert boot(hub, tmp_path).returncode == 0
    hub.requests.clear()
    run = boot(hub, tmp_path, "VibeVoice-Large,VibeVoice-1.5B")
    assert run.returncode == 0, run.stderr
    assert_served_from_the_volume(run, "VibeVoice-1.5B")
    assert_served_from_the_volume(run, "VibeVoice-Large")
    assert hub.requests_for("aoi-ot/VibeVoice-Large") == [] and hub.requests_for("Qwen/Qwen2.5-7B") == []
    assert hub.requests_for("microsoft/VibeVoice-1.5B")


def test_a_missing_shard_is_completed_and_only_it_is_downloaded(hub: FakeHub, tmp_path: Path) -> None:
    assert boot(hub, tmp_path).returncode == 0
    shard = "model-00002-of-00002.safetensors"
    folder = tmp_path / "runpod-volume" / "narrator" / "models" / "tts" / "VibeVoice" / "VibeVoice-Large"
    (folder / shard).unlink()
    hub.requests.clear()
    run = boot(hub, tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"lacks {shard}" in run.stdout and "completing it" in run.stdout
    assert "VibeVoice-Large: complete" in run.stdout and "(tokenizer kept)" in run.stdout, run.stdout
    assert blobs_fetched(hub) == {sha256_of(hub.repos["aoi-ot/VibeVoice-Large"].files[shard])}
    assert (folder / shard).read_bytes() == hub.repos["aoi-ot/VibeVoice-Large"].files[shard]
    assert_served_from_the_volume(run, "VibeVoice-Large")


def test_a_shard_that_cannot_be_fetched_fails_in_one_line_and_the_next_boot_resumes(
    hub: FakeHub, tmp_path: Path
) -> None:
    shard = "model-00002-of-00002.safetensors"
    hub.add(weights_repo("aoi-ot/VibeVoice-Large", drop=shard))  # the repo lacks it, for now
    run = boot(hub, tmp_path)
    assert run.returncode == 1
    folder = run.dest / "VibeVoice-Large"
    assert run.last_error == (f"fetch_weights: VibeVoice-Large: {folder} lacks {shard} "
                              f"(named by {INDEX}, from aoi-ot/VibeVoice-Large)")
    assert [line for line in run.stderr.splitlines() if line.startswith("fetch_weights:")] == [run.last_error]
    assert "taking no jobs" in run.stderr
    assert not (run.comfy_tts / "VibeVoice" / "VibeVoice-Large").exists(), "ComfyUI must not see a partial model"
    assert (folder / "model-00001-of-00002.safetensors").is_file(), "what was fetched stays for the next boot"

    hub.add(weights_repo("aoi-ot/VibeVoice-Large"))
    hub.requests.clear()
    run = boot(hub, tmp_path)
    assert run.returncode == 0, run.stderr
    assert blobs_fetched(hub) == {sha256_of(hub.repos["aoi-ot/VibeVoice-Large"].files[shard])}
    assert_served_from_the_volume(run, "VibeVoice-Large")


def test_two_first_boots_at_once_leave_one_complete_folder(hub: FakeHub, tmp_path: Path) -> None:
    """Both download (each into a private folder) while the other does; one publishes, the other discards."""
    both_listed = threading.Event()
    listed: list[str] = []
    answer = hub.answer

    def held_answer(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/api/models/aoi-ot/VibeVoice-Large"):
            listed.append(path)
            if len(listed) >= 2:
                both_listed.set()
        if path.startswith("/_lfs/"):
            both_listed.wait(DEADLINE / 2)  # no weights for either until both have started
        return answer(method, path, headers)

    hub.answer = held_answer  # type: ignore[method-assign]
    (tmp_path / "runpod-volume").mkdir()
    env = boot_env(hub, tmp_path, "VibeVoice-Large")
    procs = [subprocess.Popen(["bash", str(START), "weights"], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [proc.communicate(timeout=DEADLINE) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert both_listed.is_set(), "the two boots did not overlap"
    stdout = "".join(out for out, _ in outputs)
    assert stdout.count("VibeVoice-Large: complete,") == 2, stdout  # both downloaded all of it
    assert stdout.count("another run published") == 1, stdout
    run = boot_result(tmp_path, 0, stdout, "")
    assert_served_from_the_volume(run, "VibeVoice-Large")
    folder = run.dest / "VibeVoice-Large"
    repo, qwen = hub.repos["aoi-ot/VibeVoice-Large"], hub.repos["Qwen/Qwen2.5-7B"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(repo.files) | TOKENIZER_FILES)
    for path, data in repo.files.items():
        assert (folder / path).read_bytes() == data, path
    for path in TOKENIZER_FILES:
        assert (folder / path).read_bytes() == qwen.files[path], path
    assert sorted(p.name for p in run.dest.iterdir()) == ["VibeVoice-Large"]


def test_without_a_volume_the_image_keeps_its_own_models(hub: FakeHub, tmp_path: Path) -> None:
    run = boot(hub, tmp_path, volume=False)
    assert run.returncode == 0, run.stderr
    assert "no network volume at" in run.stderr
    assert hub.requests == [] and not (tmp_path / "comfyui").exists()


def test_a_model_baked_into_the_image_is_used_as_it_is(hub: FakeHub, tmp_path: Path) -> None:
    baked = tmp_path / "comfyui" / "models" / "tts" / "VibeVoice" / "VibeVoice-Large"
    baked.mkdir(parents=True)
    (baked / "config.json").write_text("{}")
    run = boot(hub, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "VibeVoice-Large: in the image at" in run.stdout
    assert hub.requests == [] and not baked.is_symlink()
