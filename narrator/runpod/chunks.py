"""Which chunks are ready to stream: done, and every chunk before them done too."""

from __future__ import annotations

from collections.abc import Mapping


class ChunkCursor:
    """Hands out chunk indices in order, each once, as soon as it and all before it are done."""

    def __init__(self) -> None:
        self.next_index = 0

    def advance(self, done: Mapping[int, object]) -> list[int]:
        """``done``: chunk index -> anything (its done marker)."""
        ready = []
        while self.next_index in done:
            ready.append(self.next_index)
            self.next_index += 1
        return ready
