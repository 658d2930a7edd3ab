"""Bake VibeVoice weights into the GPU image at build time (run with ComfyUI's Python).

The wildminder node loads ``model_name=<Name>`` from ``models/tts/VibeVoice/<Name>`` and
reads every file there: config.json, preprocessor_config.json, model.safetensors.index.json
and the shards it names, and the Qwen2.5 tokenizer.json. A file missing from that folder
makes it download at run time (it never looks in the Hugging Face cache), which fails
under the image's ``HF_HUB_OFFLINE=1``. So each ``<dest>/<Name>`` gets a snapshot of the
weights repo plus the tokenizer files of the Qwen repo the node would pick, and is then
checked for every file the node reads.

``--models`` is a comma-separated list of ``Name`` (a known model) or ``Name=org/repo``
(a custom one; its tokenizer follows the node's rule: Qwen2.5-7B if the name says "large").
An empty list bakes nothing (weights come from a mounted volume instead).
The token, if any, comes from the ``HF_TOKEN`` environment variable (a build secret).
Nothing is read from the Hugging Face cache: point ``HF_HOME`` at a scratch folder.

At boot on a RunPod network volume (docker/start-runpod.sh) the same script keeps the
models there: ``--dest /runpod-volume/narrator/models/tts/VibeVoice --link
/comfyui/models/tts/VibeVoice``. A folder that is already complete is used as it is, with
no request to the Hub; a partial one (a missing shard) is completed, fetching only what is
missing; each ``<link>/<Name>`` becomes a symlink to ``<dest>/<Name>`` (a real folder there,
baked into the image, is used as it is and nothing is fetched for it).

Concurrent runs on one volume (several workers booting at once) never see or leave a
half-written model folder: each run downloads into a private folder under
``<dest>/.incoming`` and publishes it with one ``rename``; a partial folder is claimed
the same way (renamed into the run's private folder) before it is completed. A run that
finds the folder published by another when it is done discards its own copy. No lock is
taken: network file systems do not all honour them.

Runs standalone with only huggingface_hub installed. Exit status: 0 done, 1 a download
or the check failed, 2 a bad ``--models``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

# __init__.py:50-55 and modules/model_info.py of wildminder/ComfyUI-VibeVoice (the pinned commit).
KNOWN = {
    "VibeVoice-1.5B": "microsoft/VibeVoice-1.5B",
    "VibeVoice-Large": "aoi-ot/VibeVoice-Large",
}
INDEX = "model.safetensors.index.json"
#: Read by the loader from the model folder (modules/loader.py: 118, 121, 122, 145).
LOADER_FILES = ("config.json", "preprocessor_config.json", INDEX, "tokenizer.json")
#: Taken from the Qwen repo when the weights repo has no tokenizer.json (never its config.json).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")


class UsageError(Exception):
    pass


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class Model:
    name: str
    repo: str
    tokenizer_repo: str
    official: bool


def tokenizer_repo(name: str, official: bool) -> str:
    """The Qwen repo the node downloads tokenizer.json from for ``name``."""
    # official: "Large" in the name (__init__.py:54); a folder it discovers: "large", any case (__init__.py:85)
    large = "Large" in name if official else "large" in name.lower()
    return "Qwen/Qwen2.5-7B" if large else "Qwen/Qwen2.5-1.5B"


def plan(models: str) -> list[Model]:
    out: list[Model] = []
    for item in filter(None, (part.strip() for part in models.split(","))):
        name, eq, repo = (s.strip() for s in item.partition("="))
        if not name or "/" in name or name in {".", ".."}:
            raise UsageError(f"bad model name {name!r} in --models: a folder name, optionally =org/repo")
        if eq and repo.count("/") != 1:
            raise UsageError(f"bad repo {repo!r} for {name}: write {name}=org/repo")
        if not eq and name not in KNOWN:
            known = ", ".join(KNOWN)
            raise UsageError(f"unknown model {name!r} (known: {known}); for another repo write {name}=org/repo")
        if any(m.name == name for m in out):
            raise UsageError(f"model {name!r} is listed twice")
        official = name in KNOWN
        out.append(Model(name, repo or KNOWN[name], tokenizer_repo(name, official), official))
    return out


def missing_files(model: Model, folder: Path) -> list[str]:
    """Every file the loader reads for ``model`` that ``folder`` lacks, each with the repo it comes from."""
    where = {"tokenizer.json": model.tokenizer_repo}
    missing = []
    for name in LOADER_FILES:
        if name == INDEX and not model.official and (folder / "model.safetensors").is_file():
            continue  # a custom folder may hold one unsharded file (transformers reads it directly)
        if not (folder / name).is_file():
            missing.append(f"{name} (from {where.get(name, model.repo)})")
    index = folder / INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return [*missing, f"a readable weight_map in {INDEX} (from {model.repo}): {exc!r}"]
        named = f"named by {INDEX}, from {model.repo}"
        missing += [f"{shard} ({named})" for shard in shards if not (folder / shard).is_file()]
    return missing


def explain(exc: Exception, repo: str, token: str | None) -> str:
    """One line for a failed download of ``repo``."""
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # The HTTP answer behind it: older versions wrap it (LocalEntryNotFoundError from a 401, say).
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        if getattr(getattr(cause, "response", None), "status_code", None) is not None:
            exc = cause  # type: ignore[assignment]
            break
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    secret = ("pass a token with access as HF_TOKEN: the build secret HF_TOKEN (--secret id=hf_token,env=HF_TOKEN), "
              "or on RunPod a secret in the template's environment")
    if isinstance(exc, GatedRepoError) or (status in (401, 403) and not isinstance(exc, RepositoryNotFoundError)):
        if status == 403:
            return (f"{repo} is gated and the HF_TOKEN given has no access to it (403): accept its conditions "
                    f"on the Hub with that account, or {secret}")
        if token:
            return f"{repo}: the Hub refused the HF_TOKEN given ({status}): {secret}"
        return f"{repo} is gated or private and needs authentication ({status}): {secret}"
    if isinstance(exc, RepositoryNotFoundError):
        if status == 401 and not token:
            return f"{repo} was not found, or is private or gated (401): check the name, or {secret}"
        return f"{repo} was not found ({status}): check the repo name"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo}: revision not found ({status})"
    if isinstance(exc, LocalEntryNotFoundError):  # before EntryNotFoundError: a subclass of it in 0.x
        return f"{repo}: cannot reach the Hub ({type(exc).__name__}); check the network and HF_ENDPOINT"
    if isinstance(exc, EntryNotFoundError):
        return f"{repo}: a file it lists is not there ({status})"
    if isinstance(exc, HfHubHTTPError):
        return f"{repo}: the Hub answered {status}: {_first_line(exc)}"
    return f"{repo}: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), "")


INCOMING = ".incoming"


def ensure(model: Model, dest: Path, token: str | None, link: Path | None = None) -> Path:
    """``<dest>/<Name>`` complete (fetched or completed only if it is not), and linked from ``link``."""
    if link is not None and _baked(link / model.name):
        print(f"{model.name}: in the image at {link / model.name}, nothing fetched", flush=True)
        return link / model.name
    folder = dest / model.name
    if folder.is_dir() and not missing_files(model, folder):
        print(f"{model.name}: complete in {folder}, nothing fetched", flush=True)
    else:
        _publish(model, folder, _fetched(model, folder, token))
    if link is not None:
        _link(link / model.name, folder)
    return folder


def _fetched(model: Model, folder: Path, token: str | None) -> Path:
    """A private folder holding the complete model: ``folder``'s files claimed, the rest downloaded."""
    work = folder.parent / INCOMING / f"{model.name}.{socket.gethostname()}.{os.getpid()}"
    work.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Claim a partial folder (one rename: a concurrent run either gets it or finds it gone).
        os.rename(folder, work)
        print(f"{model.name}: {folder} lacks " + "; ".join(missing_files(model, work)) + ": completing it",
              flush=True)
    except FileNotFoundError:
        work.mkdir()
    try:
        fetch(model, work, token, shown=folder)
    except BaseException:
        _give_back(work, folder)
        raise
    return work


def _publish(model: Model, folder: Path, work: Path) -> None:
    try:
        os.rename(work, folder)
    except OSError:
        if not (folder.is_dir() and not missing_files(model, folder)):
            raise
        print(f"{model.name}: another run published {folder} first; this copy is discarded", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        (folder.parent / INCOMING).rmdir()  # only if no other run is downloading


def _give_back(work: Path, folder: Path) -> None:
    """After a failure, leave what was downloaded where the next run completes it."""
    try:
        if not any(p.is_file() for p in work.rglob("*")):
            raise OSError("nothing to give back")
        os.rename(work, folder)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another run published or claimed it meanwhile
    with contextlib.suppress(OSError):
        (folder.parent / INCOMING).rmdir()


def _baked(path: Path) -> bool:
    """A model folder that is part of the image (not a link this script made, not an empty placeholder)."""
    return path.is_dir() and not path.is_symlink() and any(path.iterdir())


def _link(path: Path, target: Path) -> None:
    """``path`` -> ``target``, replaced in one step (a reader sees the old link or the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    if path.is_dir() and not path.is_symlink():
        path.rmdir()  # an empty placeholder
    os.replace(tmp, path)
    print(f"{path.name}: {path} -> {target}", flush=True)


def fetch(model: Model, folder: Path, token: str | None, shown: Path | None = None) -> Path:
    """Download ``model`` into ``folder`` (files already there and current are kept) and check it.

    ``shown``: the folder to name in messages (``folder`` is a private one while it fills).
    """
    from huggingface_hub import snapshot_download

    repo = model.repo
    # What the closing line says of the tokenizer: kept from an earlier boot, or which repo gave it.
    tokenizer_from = "kept" if (folder / "tokenizer.json").is_file() else f"from {model.repo}"
    try:
        print(f"fetching {repo} for {model.name}", flush=True)
        snapshot_download(repo, local_dir=folder, token=token)
        # The loader reads tokenizer.json from the model folder only (loader.py:145-148).
        if not (folder / "tokenizer.json").is_file():
            repo = model.tokenizer_repo
            tokenizer_from = f"from {repo}"
            wanted = [f for f in TOKENIZER_FILES if not (folder / f).exists()]
            print(f"fetching {', '.join(wanted)} from {repo} for {model.name}", flush=True)
            snapshot_download(repo, local_dir=folder, allow_patterns=wanted, token=token)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line naming the repo
        raise FetchError(explain(exc, repo, token)) from None
    missing = missing_files(model, folder)
    if missing:
        raise FetchError(f"{model.name}: {shown or folder} lacks " + "; ".join(missing))
    shutil.rmtree(folder / ".cache" / "huggingface", ignore_errors=True)  # huggingface_hub's download bookkeeping
    with contextlib.suppress(OSError):
        (folder / ".cache").rmdir()  # only if nothing else is in it
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{model.name}: complete, {size / 1e6:.1f} MB (tokenizer {tokenizer_from})", flush=True)
    return folder


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="", help="Name or Name=org/repo, comma-separated")
    parser.add_argument("--dest", type=Path, required=True, help="ComfyUI's models/tts/VibeVoice")
    parser.add_argument("--link", type=Path, help="make <link>/<Name> a symlink to <dest>/<Name> (ComfyUI's folder)")
    args = parser.parse_args(argv)
    token = os.environ.get("HF_TOKEN", "").strip() or None
    try:
        models = plan(args.models)
    except UsageError as exc:
        print(f"fetch_weights: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        args.dest.mkdir(parents=True, exist_ok=True)  # even empty: the image copies the folder
        for model in models:
            ensure(model, args.dest, token, args.link)
    except FetchError as exc:
        line = str(exc).replace(token, "***") if token else str(exc)
        print(f"fetch_weights: {line}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # the volume: not writable, full, gone
        print(f"fetch_weights: {exc.strerror or exc}: {exc.filename or args.dest}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
