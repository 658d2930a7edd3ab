"""An input given inline: base64 text, or a ``data:`` URI holding it (a voice, a document)."""

from __future__ import annotations

import base64
import binascii

from ..errors import InvalidRequest


def inline_bytes(value: str, *, field: str, max_bytes: int, what: str, hint: str = "") -> bytes:
    """The bytes ``value`` encodes, at most ``max_bytes``; InvalidRequest naming ``field`` otherwise."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    # Cap before decoding: base64 is 4 characters per 3 bytes.
    if len(value) > max_bytes * 4 // 3 + 4:
        raise InvalidRequest(f"{what} is larger than {max_bytes} bytes", field=field)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"not valid base64{hint}", field=field) from None
    if not data:
        raise InvalidRequest("decodes to nothing", field=field)
    return data
