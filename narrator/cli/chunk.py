"""``narrator chunk FILE``: show how a text will be split before anyone pays for a GPU."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..chunker import Chunk, chunk_text
from ..chunker.chunk import WORDS_PER_MINUTE
from ..errors import InvalidRequest, ModelError, NarratorError
from ..models import ModelRegistry, ModelSpec
from ..settings import Settings

_PREVIEW = 60


def register(sub: Any) -> None:
    """Add the ``chunk`` command to an argparse subparsers object."""
    parser = sub.add_parser(
        "chunk",
        help="show how a text would be split into chunks",
        description="Split FILE (plain text, a speaker script or SSML) the way a job would, and show the chunks. "
        "A book (.epub, .html, .md; a .txt with --chapters) lists its chapters instead: title, words, "
        "estimated time.",
    )
    parser.add_argument("file", metavar="FILE", help="the text to split; - reads standard input")
    parser.add_argument("--model", "-m", help="model whose chunk size and speakers apply (default: the default model)")
    parser.add_argument(
        "--max-chars", type=int, metavar="N", help="largest chunk, in characters (default: the model's)"
    )
    parser.add_argument(
        "--min-chars", type=int, metavar="N", help="smallest chunk worth its own (default: the model's)"
    )
    parser.add_argument(
        "--speaker", action="append", default=[], metavar="NAME=N", help="read 'NAME:' lines as speaker N"
    )
    parser.add_argument("--no-normalize", action="store_true", help="say numbers, dates and abbreviations as written")
    parser.add_argument("--json", action="store_true", help="print the chunks (or a book's chapters) as a JSON list")
    parser.add_argument("--chapters", metavar="LIST", help="a book: only these chapters (3-5, 1,4,7-9)")
    parser.add_argument("--keep-matter", action="store_true", help="a book: keep front and back matter")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if _is_book(args):
        return chapters(args, settings)
    try:
        text = read_input(args.file)
        spec = _model(settings, args.model or settings.default_model)
        max_chars = args.max_chars or spec.max_chunk_chars
        min_chars = spec.min_chunk_chars if args.min_chars is None else args.min_chars
        languages = [lang.lower() for lang in spec.languages] or ["en"]
        chunks = chunk_text(
            text,
            max_chars,
            min_chars=min_chars,
            normalize=not args.no_normalize,
            speakers=_speakers(args.speaker),
            max_speakers=spec.speakers,
            language="en" if "en" in languages else languages[0],
        )
    except NarratorError as exc:
        print(f"narrator chunk: {exc}", file=sys.stderr)
        return 2
    rate = spec.words_per_minute
    if args.json:
        print(json.dumps([_row(c, rate) for c in chunks], ensure_ascii=False, indent=2))
    else:
        print(table(chunks, spec.name, max_chars, rate))
    return 0


def _is_book(args: argparse.Namespace) -> bool:
    from ..documents import EXTENSIONS  # the readers load only for a book

    kind = EXTENSIONS.get(Path(args.file).suffix.lower())
    return kind not in (None, "text") or (kind == "text" and bool(args.chapters or args.keep_matter))


def chapters(args: argparse.Namespace, settings: Settings) -> int:
    """A book's chapters as a job would read them: number, words, estimated time, title."""
    from ..job.book import read_book

    try:
        spec = _model(settings, args.model or settings.default_model)
        book, numbers = read_book(Path(args.file).read_bytes(), name=Path(args.file).name,
                                  keep_matter=args.keep_matter, chapters=args.chapters,
                                  max_bytes=settings.max_document_bytes)
    except OSError as exc:
        print(f"narrator chunk: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except NarratorError as exc:
        print(f"narrator chunk: {exc}", file=sys.stderr)
        return 2
    rate = spec.words_per_minute
    rows = [{"number": n, "title": c.title, "kind": c.kind, "words": c.words,
             "seconds": round(c.words * 60 / rate, 1)} for n, c in zip(numbers, book.chapters, strict=True)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(f"{book.title or Path(args.file).name}" + (f", by {book.author}" if book.author else ""))
    print(f"{'#':>4}  {'words':>7}  {'time':>8}  title")
    for number, chapter in zip(numbers, book.chapters, strict=True):
        minutes, secs = divmod(round(chapter.words * 60 / rate), 60)
        print(f"{number:>4}  {chapter.words:>7}  {minutes:>4}:{secs:02d}  {chapter.title or '(untitled)'}")
    words = sum(c.words for c in book.chapters)
    hours, rest = divmod(round(words * 60 / rate), 3600)
    print(f"{_plural(len(rows), 'chapter')}, {words} words, about {hours} h {rest // 60} min at {rate:g} words a "
          f"minute (model {spec.name}); voice some with --chapters LIST")
    return 0


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def read_input(name: str) -> str:
    """The file (or stdin for ``-``) as text; offsets count its characters after any byte-order mark."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {name}: {exc.strerror or exc}", field="FILE") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = "standard input" if name == "-" else name
        raise InvalidRequest(f"{where} is not UTF-8 text (byte {exc.start})", field="FILE") from None


def _model(settings: Settings, name: str) -> ModelSpec:
    registry = ModelRegistry.from_dir(settings.workflows_dir)
    spec = registry.get(name)
    if spec is None:
        known = ", ".join(registry.names()) or "none"
        raise ModelError(f"unknown model {name!r} (known: {known})")
    return spec


def _speakers(pairs: list[str]) -> dict[str, int]:
    out = {}
    for pair in pairs:
        name, sep, number = pair.rpartition("=")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise InvalidRequest(f"--speaker {pair!r}: give NAME=N, e.g. Alice=2", field="speaker")
        out[name.strip()] = int(number)
    return out


def _seconds(chunk: Chunk, words_per_minute: float) -> float:
    """The chunk's spoken length at the model's own rate (``Chunk.seconds`` assumes the common one)."""
    return chunk.seconds * WORDS_PER_MINUTE / words_per_minute


def _row(chunk: Chunk, words_per_minute: float = WORDS_PER_MINUTE) -> dict[str, Any]:
    return {**chunk.to_dict(), "words": chunk.words, "seconds": round(_seconds(chunk, words_per_minute), 2)}


def table(chunks: list[Chunk], model: str, max_chars: int, words_per_minute: float = WORDS_PER_MINUTE) -> str:
    lines = [f"{'#':>5}  {'words':>5}  {'boundary':<9}  {'speaker':>7}  {'secs':>6}  text"]
    for c in chunks:
        preview = " ".join(c.text.split())
        if len(preview) > _PREVIEW:
            preview = preview[: _PREVIEW - 1] + "…"
        secs = _seconds(c, words_per_minute)
        lines.append(f"{c.index:>5}  {c.words:>5}  {c.boundary.value:<9}  {c.speaker:>7}  {secs:>6.1f}  {preview}")
    words = sum(c.words for c in chunks)
    seconds = sum(_seconds(c, words_per_minute) for c in chunks)
    minutes, secs = divmod(round(seconds), 60)
    lines.append(
        f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''}, {words} words, about {minutes} min {secs} s "
        f"at {words_per_minute:g} words a minute (model {model}, at most {max_chars} characters a chunk)"
    )
    return "\n".join(lines)
