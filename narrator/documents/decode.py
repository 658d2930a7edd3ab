"""Bytes of a text, markup or not, into str: a BOM, an XML declaration or a meta charset, else UTF-8, else cp1252."""

from __future__ import annotations

import codecs
import re

_DECLARED = re.compile(
    rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']|<meta[^>]*?charset\s*=\s*["']?([A-Za-z0-9._-]+)""",
    re.IGNORECASE,
)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes, markup: bool = True) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    found = _DECLARED.search(data[:2048]) if markup else None
    if found:
        name = (found.group(1) or found.group(2)).decode("ascii")
        try:
            codecs.lookup(name)
        except LookupError:
            name = ""
        # A declared UTF-16 in a file without a BOM is a lie the bytes already tell (the declaration read as ASCII).
        if name and not name.lower().startswith("utf-16"):
            try:
                return data.decode(name)
            except UnicodeDecodeError:
                pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
