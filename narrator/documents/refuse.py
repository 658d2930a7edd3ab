"""The one way a reader says no: an :class:`InvalidRequest` on the ``document`` field, naming the document."""

from __future__ import annotations

from ..errors import InvalidRequest

FIELD = "document"


def refused(name: str, message: str) -> InvalidRequest:
    """``<name> <message>``: ``book.epub is DRM-protected …``, or ``the document …`` when it has no name."""
    subject = name.rsplit("/", 1)[-1] if name else "the document"
    return InvalidRequest(f"{subject} {message}", field=FIELD)
