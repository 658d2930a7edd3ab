"""A one-line progress bar for terminals (and plain lines when not a terminal)."""

from __future__ import annotations

from typing import TextIO

from ..result import Progress


class ProgressBar:
    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
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
