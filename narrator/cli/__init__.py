"""The ``narrator`` command: parse, call the library, format. Nothing else."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import jobs
from ..audio.decode import probe
from ..errors import AudioError, ConfigurationError, InvalidRequest, JobNotFound, NarratorError
from ..ops.logs import setup_logging
from ..result import JobState
from ..settings import Settings
from .progress_bar import ChapterLine, ProgressBar

#: ``narrator worker --pool threads``: chunks in flight per process when --concurrency is not given.
THREADS_DEFAULT = 32
EXTENSIONS = {".wav": "wav", ".flac": "flac", ".mp3": "mp3", ".opus": "opus", ".ogg": "opus", ".m4b": "m4b"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except InvalidRequest as exc:
        print(f"narrator: bad configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging("cli", verbose=args.verbose, json_logs=settings.log_json)
    try:
        return int(args.func(args, settings))
    except InvalidRequest as exc:
        print(f"narrator: invalid request: {exc}", file=sys.stderr)
        return 2
    except NarratorError as exc:
        print(f"narrator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`narrator chunk … | head`): as any Unix tool, stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narrator", description="Long text in, one audio file out.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    speak = sub.add_parser("speak", help="synthesize text and write the audio file (waits for the job)")
    _request_options(speak)
    speak.add_argument("-o", "--output", type=Path, required=True, help="audio file to write")
    speak.set_defaults(func=cmd_speak)

    submit = sub.add_parser("submit", help="submit a job to the workers; prints its id")
    _request_options(submit)
    submit.add_argument("--wait", action="store_true", help="wait with a progress bar and print the result")
    submit.add_argument("-o", "--output", type=Path, help="with --wait: also download the audio here")
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="show a job's state and progress as JSON")
    status.add_argument("job_id")
    status.set_defaults(func=cmd_status)

    result = sub.add_parser("result", help="download a finished job's audio")
    result.add_argument("job_id")
    result.add_argument("-o", "--output", type=Path, required=True, help="audio file to write")
    result.set_defaults(func=cmd_result)

    cancel = sub.add_parser("cancel", help="cancel a job: revoke its tasks, interrupt running chunks")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=cmd_cancel)

    worker = sub.add_parser("worker", help="run a Celery worker for the cpu or gpu queue")
    worker.add_argument("--queues", choices=["cpu", "gpu", "all"], default="all")
    worker.add_argument(
        "--concurrency", type=int,
        help="processes (default: 1 for gpu, cores for cpu); 2 on gpu keeps the next prompt queued in ComfyUI; "
             f"with --pool threads, threads (default {THREADS_DEFAULT})",
    )
    worker.add_argument(
        "--pool", choices=["prefork", "threads"], default="prefork",
        help="prefork (default): a process per task; threads: many tasks in one process, for models whose "
             "chunks run elsewhere (engine = \"runpod\": each thread waits on a RunPod endpoint)",
    )
    worker.add_argument(
        "--name", metavar="NAME",
        help="node name, unique among live workers (NAME becomes NAME@<host>); default NARRATOR_WORKER_NAME, "
        "else <queues>-<n>@<host> with the lowest n no live worker on this host holds",
    )
    worker.set_defaults(func=cmd_worker)

    for register in _plugins():
        register(sub)
    return parser


def _plugins() -> list[Any]:
    from . import chunk, doctor, gc, health, models, runpod, verify

    return [models.register, chunk.register, doctor.register, health.register, gc.register, verify.register,
            runpod.register]


def _request_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", help="the text to speak; '-' reads standard input")
    p.add_argument("-f", "--file", type=Path, help="read the text from this file ('-' for standard input)")
    p.add_argument("-m", "--model", help="model name (see `narrator models list`); default NARRATOR_DEFAULT_MODEL")
    p.add_argument("--voice", help="reference voice: an audio FILE, an http(s) URL, or a stored voice name")
    p.add_argument("--seed", type=int, help="random seed (models that bind one), 0 to 4294967295")
    p.add_argument("--speed", type=float, help="speaking rate, 0.5 to 2.0")
    p.add_argument("--temperature", type=float, help="sampling temperature, above 0 and at most 2")
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance (VibeVoice), 1.0 to 10.0")
    p.add_argument("--steps", type=int, help="diffusion steps (VibeVoice), 1 to 100")
    p.add_argument("--format", choices=["wav", "flac", "mp3", "opus", "m4b"],
                   help="default: from the output's extension (m4b: an audiobook with chapter marks)")
    p.add_argument("--sample-rate", type=int, help="output sample rate in Hz (default: the model's)")
    p.add_argument("--timeout", type=float, help="seconds to wait for the job")
    book = p.add_argument_group("books (an .epub, .html or .md file; a .txt one with --chapters, --split or m4b)")
    book.add_argument("--chapters", metavar="LIST",
                      help="only these chapters, as `narrator chunk` numbers them: 3-5, 1,4,7-9")
    book.add_argument("--no-titles", action="store_true", help="do not speak each chapter's title first")
    book.add_argument("--keep-matter", action="store_true",
                      help="keep front and back matter (cover page, contents, ...)")
    book.add_argument("--split", choices=["chapters"],
                      help="also a file per chapter (written beside -o, in a folder)")
    p.add_argument("--verify", choices=["off", "report", "retry"],
                   help="check each chunk's speech against its text: report failures, or synthesize them "
                        "again (default: the model's)")


def request_from_args(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = _text_or_document(args)
    if args.model:
        request["model"] = args.model
    if args.voice:
        request["voice"] = _voice(args.voice)
    settings = {
        k: getattr(args, k)
        for k in ("seed", "speed", "temperature", "cfg_scale", "steps")
        if getattr(args, k) is not None
    }
    if settings:
        request["voice_settings"] = settings
    output: dict[str, Any] = {}
    fmt = args.format or _format_for(getattr(args, "output", None))
    if fmt:
        output["format"] = fmt
    if args.sample_rate:
        output["sample_rate"] = args.sample_rate
    if output:
        request["output"] = output
    if args.timeout:
        request["timeout"] = args.timeout
    if args.verify:
        request["verify"] = args.verify
    if args.split:
        request.setdefault("output", {})["split"] = args.split
    return request


def _text_or_document(args: argparse.Namespace) -> dict[str, Any]:
    """``{"text": ...}``, or for a book file ``{"document": <base64>, ...}`` with the book options."""
    found = _document_path(args)
    if found is None:
        if args.chapters or args.split or args.keep_matter or args.no_titles:
            raise InvalidRequest("--chapters, --split, --keep-matter and --no-titles are for a book file "
                                 "(.epub, .html, .md, or .txt)", field="--chapters")
        return {"text": _read_text(args)}
    path, kind = found
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    request: dict[str, Any] = {"document": base64.b64encode(data).decode(),
                               "document_format": kind}
    if args.chapters:
        request["chapters"] = args.chapters
    book: dict[str, bool] = {}
    if args.no_titles:
        book["speak_titles"] = False
    if args.keep_matter:
        book["keep_matter"] = True
    if book:
        request["book"] = book
    return request


def _document_path(args: argparse.Namespace) -> tuple[Path, str] | None:
    """The book file named (positionally or by --file) and its kind, when the input is one."""
    name = args.file if args.file is not None else args.text
    if name is None or str(name) == "-" or (args.file is not None and args.text is not None):
        return None
    path = Path(str(name)).expanduser()
    if not path.suffix:
        return None
    from ..documents import EXTENSIONS  # the readers load only when a file is named

    # A file of a book's kind is sent as a ``document`` (chapters, titles, tags); a .txt only when asked.
    kind = EXTENSIONS.get(path.suffix.lower())
    book_file = kind is not None and kind != "text"
    if args.file is None and (not book_file or not path.is_file()):
        return None  # positional text that is not a book file is the text itself
    wants_book = args.chapters or args.split or args.format == "m4b" or _suffix(args) == ".m4b"
    if book_file or (kind == "text" and wants_book):
        return path, kind or "text"
    return None


def _suffix(args: argparse.Namespace) -> str:
    output = getattr(args, "output", None)
    return output.suffix.lower() if output is not None else ""


def _read_text(args: argparse.Namespace) -> str:
    if args.file is not None and args.text is not None:
        raise InvalidRequest("give the text or --file, not both", field="text")
    source = args.file if args.file is not None else args.text
    if source is None:
        raise InvalidRequest("give the text, '-' for standard input, or --file FILE", field="text")
    if str(source) == "-":
        return sys.stdin.read()
    if args.file is not None:
        try:
            return Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read {args.file}: {exc}", field="file") from exc
    return str(source)


#: A --voice value ending so is a file the user means, never a stored voice's name.
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff")


def _voice(value: str) -> str:
    if value.startswith(("http://", "https://")):
        return value
    path = Path(value).expanduser()
    if path.is_file():
        data = path.read_bytes()
        try:
            probe(data, field=value)
        except AudioError as exc:
            raise InvalidRequest(str(exc), field="--voice") from None
        return base64.b64encode(data).decode()
    if path.suffix.lower() in AUDIO_SUFFIXES or "/" in value or path.exists():
        raise InvalidRequest(f"{value}: no such file", field="--voice")
    return value  # a stored voice name; validation says if it does not exist


def _format_for(output: Path | None) -> str | None:
    if output is None:
        return None
    fmt = EXTENSIONS.get(output.suffix.lower())
    if fmt is None:
        raise InvalidRequest(f"cannot tell the format from {output.name!r}; pass --format", field="output")
    return fmt


def _download_chapters(handle: jobs.JobHandle, result: Any, output: Path) -> Path:
    """A split book's chapter files, in a folder beside ``output``: ``book_chapters/03 - Title.m4b``."""
    from ..audio.book_meta import chapter_name

    folder = output.with_name(f"{output.stem}_chapters")
    folder.mkdir(parents=True, exist_ok=True)
    for chapter in result.chapters:
        if chapter.key:
            handle.store.get_file(chapter.key, folder / chapter_name(chapter.number, chapter.title, result.format))
    return folder


def _wait(handle: jobs.JobHandle, timeout: float | None) -> Any:
    bar = ProgressBar(sys.stderr, extra=ChapterLine(handle))
    try:
        return handle.wait(timeout=timeout, on_progress=bar.update)
    finally:
        bar.close()


def _warn_unused_voice(args: argparse.Namespace, settings: Settings) -> None:
    """A model without voice cloning speaks in its own voice: say so, rather than ignore --voice silently."""
    from ..tasks.context import context_for

    name = args.model or settings.default_model
    registry = context_for(settings).registry
    spec = registry.get(name)
    if args.voice and spec is not None and not spec.voice_cloning:
        cloning = sorted(m.name for m in registry if m.voice_cloning)
        print(f"narrator: model {name!r} cannot clone a voice, so --voice is not used"
              + (f" (these can: {', '.join(cloning)}; --model)" if cloning else ""), file=sys.stderr)


def cmd_speak(args: argparse.Namespace, settings: Settings) -> int:
    request = request_from_args(args)  # a bad --voice is an error before it is a warning
    _warn_unused_voice(args, settings)
    handle = jobs.submit(request, settings)
    result = _wait(handle, args.timeout)
    _download(handle, args.output)
    chapters = f"{_count(len(result.chapters), 'chapter')}, " if result.chapters else ""
    print(
        f"wrote {args.output} ({result.duration_seconds:.1f} s of audio, {chapters}{_count(result.chunks, 'chunk')}, "
        f"{result.metrics.execution_time:.1f} s)",
        file=sys.stderr,
    )
    if any(c.key for c in result.chapters):
        folder = _download_chapters(handle, result, args.output)
        print(f"wrote {_count(len(result.chapters), 'chapter file')} in {folder}", file=sys.stderr)
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    if settings.eager and not args.wait:
        # In-process, the job would die with this command: never print an id for a job that will not run.
        raise ConfigurationError(
            "submit queues a job for workers, and none is configured; set it to a broker "
            "(redis://...) with workers running, or run the job here with `narrator speak`",
            variable="NARRATOR_BROKER_URL")
    request = request_from_args(args)  # a bad --voice is an error before it is a warning
    _warn_unused_voice(args, settings)
    handle = jobs.submit(request, settings)
    if not args.wait:
        print(handle.id)
        return 0
    result = _wait(handle, args.timeout)
    if args.output:
        _download(handle, args.output)
        if any(c.key for c in result.chapters):
            _download_chapters(handle, result, args.output)
    print(json.dumps(result.to_json(), indent=2))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    handle, state = _existing(args.job_id, settings)
    progress = handle.progress()
    shown = {**progress.model_dump(mode="json"), "state": state}
    result = handle.result() if state is JobState.SUCCESS else None
    if result is not None and result.verification is not None:
        # The chunks that still fail their check, with where they are: what a user fixes or re-runs.
        shown["verification"] = result.verification.model_dump(mode="json")
    print(json.dumps(shown, indent=2))
    return 0


def cmd_result(args: argparse.Namespace, settings: Settings) -> int:
    handle, state = _existing(args.job_id, settings)
    if handle.result() is None:
        why = {JobState.CANCELLED: "was cancelled", JobState.FAILURE: "failed"}.get(state, "is not done yet")
        print(f"narrator: job {handle.id} {why}: it has no audio (narrator status {handle.id})", file=sys.stderr)
        return 1
    _download(handle, args.output)
    return 0


def _existing(job_id: str, settings: Settings) -> tuple[jobs.JobHandle, JobState]:
    """The job and its state; JobNotFound when this storage has never heard of it (a typo, another store)."""
    handle = jobs.get(job_id, settings)
    state = handle.status()
    if state is JobState.PENDING and not handle.job_store.known():
        raise JobNotFound(
            f"no job {handle.id} in {settings.effective_storage_url} (check the id, and NARRATOR_STORAGE_URL)")
    return handle, state


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    jobs.get(args.job_id, settings).cancel()
    print(f"cancelled {args.job_id}", file=sys.stderr)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import os
    import socket

    from ..ops import node_name
    from ..tasks.names import QUEUES

    given, field = (args.name, "--name") if args.name else (settings.worker_name, "NARRATOR_WORKER_NAME")
    name, slot = node_name.for_worker(
        given, field, args.queues, socket.gethostname(), node_name.runtime_dir(os.environ, os.getuid()))
    from ..tasks.worker import app, exit_code

    queues = QUEUES[args.queues]
    if args.pool == "threads":
        concurrency = args.concurrency or THREADS_DEFAULT
    else:
        concurrency = args.concurrency or (1 if args.queues == "gpu" else None)
    argv = ["worker", "--loglevel", "INFO", "-Q", ",".join(queues), "--hostname", name, "--pool", args.pool]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    try:
        app.worker_main(argv)
    finally:
        if slot is not None:  # held until here: no other worker on this host could take the name
            slot.release()
    return exit_code()  # Celery's worker_main drops the worker's exit status


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _download(handle: jobs.JobHandle, path: Path) -> None:
    handle.download(path)


