"""``narrator verify AUDIO TEXT``: one file's speech checked against its text. Parse, call
narrator.verify, print; exit 0 when it passes, 3 when it fails (1 and 2 are errors, as everywhere)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import audio
from ..chunker.normalize import normalize
from ..errors import InvalidRequest
from ..settings import Settings
from ..verify import ChunkCheck, Limits, check_audio
from ..verify.load import recogniser_for

FAILS = 3


def register(sub: Any) -> None:
    p = sub.add_parser("verify", help="check that an audio file says a text: score and verdict (exit 3: fails)")
    p.add_argument("audio", type=Path, help="the audio file (wav, flac, mp3, ogg)")
    p.add_argument("text", nargs="?", help="what it should say")
    p.add_argument("-f", "--file", type=Path, help="read the text from this file")
    p.add_argument("-m", "--model", help="the model that spoke it, for its rate (default NARRATOR_DEFAULT_MODEL)")
    p.add_argument("--language", default="en", help="the text's language (default en)")
    p.add_argument("--speed", type=float, default=1.0, help="the speed it was spoken at (default 1.0)")
    p.add_argument("--no-normalize", action="store_true", help="the text is already as spoken (numbers in words)")
    p.add_argument("--json", action="store_true", help="print the whole check as JSON")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from ..tasks.context import context_for

    text = _text(args)
    spec = context_for(settings).model(args.model or settings.default_model, "--model")
    if not args.audio.is_file():
        raise InvalidRequest(f"no such file: {args.audio}", field="audio")
    sound = audio.decode(args.audio.read_bytes(), field="audio")
    spoken = text if args.no_normalize else normalize(text)
    limits = Limits(seconds_per_word=60.0 / spec.words_per_minute, speed=args.speed)
    check = check_audio(sound.samples, sound.sample_rate, spoken, limits, recogniser_for(settings), args.language)
    print(json.dumps(check.model_dump(mode="json"), indent=2) if args.json else describe(check))
    return 0 if check.passed else FAILS


def describe(check: ChunkCheck) -> str:
    verdict = "pass" if check.passed else "FAIL: " + "; ".join(check.reasons)
    figures = [f"{check.sound_end - check.sound_start:.1f} s of sound"]
    if check.score is not None:
        figures.insert(0, f"score {check.score:.2f}" + (f", WER {check.wer:.2f}" if check.wer is not None else ""))
    hearer = check.recogniser or "no recogniser for this language: signal checks only"
    lines = [f"{verdict} ({', '.join(figures)}; {hearer})"]
    if check.heard:
        lines.append(f"heard: {check.heard}")
    return "\n".join(lines)


def _text(args: argparse.Namespace) -> str:
    if args.file is not None:
        if args.text is not None:
            raise InvalidRequest("give the text or --file, not both", field="text")
        return sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
    if not args.text:
        raise InvalidRequest("give the text the audio should say (or --file)", field="text")
    return str(args.text)
