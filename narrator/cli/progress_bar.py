"""A one-line progress bar for terminals (and plain lines when not a terminal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ..errors import NarratorError
from ..result import JobState, Progress

if TYPE_CHECKING:
    from ..jobs import JobHandle


class ChapterLine:
    """For a book: which chapter the job has reached (the one its next chunk belongs to)."""

    def __init__(self, handle: JobHandle) -> None:
        self.handle = handle
        self._chapters: list[tuple[int, str]] | None = None  # (first chunk, title), read once staged

    def __call__(self, progress: Progress) -> str:
        if self._chapters is None and progress.state is not JobState.PENDING:
            try:
                book = self.handle.job_store.manifest().book
            except NarratorError:
                return ""  # not staged yet: next time
            self._chapters = [(c.first_chunk, c.title) for c in book.chapters] if book else []
        if not self._chapters:
            return ""
        # Chunks finish roughly in order: the chapter of the next chunk is the one being read.
        reached = sum(1 for first, _ in self._chapters[1:] if first <= progress.chunks_done)
        title = self._chapters[reached][1]
        title = title if len(title) <= 40 else title[:39] + "…"
        return f"  chapter {reached + 1}/{len(self._chapters)}" + (f": {title}" if title else "")


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30, extra: Callable[[Progress], str] | None = None) -> None:
        self.stream = stream
        self.width = width
        self.extra = extra
        self.tty = stream.isatty()
        self._shown = False

    def update(self, progress: Progress) -> None:
        total = progress.chunks_total
        done = progress.chunks_done
        filled = int(self.width * done / total) if total else 0
        bar = "#" * filled + "-" * (self.width - filled)
        # Seconds of chunk audio so far: the file, trimmed and with its pauses, differs a little.
        spoken = f"{progress.audio_seconds:6.1f} s synthesized"
        line = f"[{bar}] {done}/{total or '?'} chunks  {spoken}  {progress.state.lower()}"
        if self.extra is not None:
            line += self.extra(progress)
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
