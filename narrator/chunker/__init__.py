"""Text -> ordered chunks. Pure: no I/O, no Celery."""

from .core import Boundary, Chunk, chunk_text

__all__ = ["Boundary", "Chunk", "chunk_text"]
