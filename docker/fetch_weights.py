"""Bake VibeVoice weights into the GPU image at build time (run with ComfyUI's Python).

Each model lands in ``<dest>/<name>``, the folder the wildminder node loads
``model_name=<name>`` from, so the node never downloads at run time; the Qwen2.5
tokenizer it needs goes into the Hugging Face cache under ``--hf-home``. The image
then runs with ``HF_HUB_OFFLINE=1``: a missing file fails loudly instead of downloading.

``--models`` is a comma-separated list of ``Name`` (a known model) or ``Name=org/repo``.
An empty list bakes nothing (weights come from a mounted volume instead).
The token, if any, comes from the ``HF_TOKEN`` environment variable (a build secret).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

KNOWN = {
    "VibeVoice-1.5B": ("microsoft/VibeVoice-1.5B", "Qwen/Qwen2.5-1.5B"),
    "VibeVoice-Large": ("aoi-ot/VibeVoice-Large", "Qwen/Qwen2.5-7B"),
}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "config.json"]


def plan(models: str) -> list[tuple[str, str, str | None]]:
    """(folder name, weights repo, tokenizer repo or None) for each requested model."""
    out = []
    for item in filter(None, (part.strip() for part in models.split(","))):
        name, _, repo = item.partition("=")
        if repo:
            out.append((name, repo, KNOWN.get(name, ("", None))[1]))
        elif name in KNOWN:
            out.append((name, *KNOWN[name]))
        else:
            raise SystemExit(f"unknown model {name!r}: write it as {name}=org/repo")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="")
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--hf-home", type=Path, required=True)
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    args.hf_home.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(args.hf_home)
    from huggingface_hub import snapshot_download

    token = os.environ.get("HF_TOKEN") or None
    for name, repo, tokenizer in plan(args.models):
        print(f"fetching {repo} -> {args.dest / name}", flush=True)
        snapshot_download(repo, local_dir=args.dest / name, token=token)
        if tokenizer:
            print(f"fetching tokenizer {tokenizer}", flush=True)
            snapshot_download(tokenizer, allow_patterns=TOKENIZER_FILES, token=token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
