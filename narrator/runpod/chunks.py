"""Which chunks are ready to stream: done, and every chunk before them done too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..job.jobdata import parse_done


def done_chunks(keys: Iterable[str]) -> dict[int, float]:
    """Chunk index -> seconds, from the done-marker keys."""
    return {index: d.seconds for index, d in parse_done(list(keys)).items()}


class ChunkCursor:
    """Hands out chunk indices in order, each once, as soon as it and all before it are done."""

    def __init__(self) -> None:
        self.next_index = 0

    def advance(self, done: Mapping[int, float]) -> list[int]:
        ready = []
        while self.next_index in done:
            ready.append(self.next_index)
            self.next_index += 1
        return ready
