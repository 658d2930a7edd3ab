"""A zip archive read in memory within limits: no member is ever written to disk.

Refused before anything is read: a corrupt zip, too many members, declared sizes over the
limit, an absurd compression ratio, and member names that could escape a folder (``..``,
absolute paths, backslashes, drive letters). Reads are bounded again by the bytes actually
inflated, because a member's declared size is the archive's own claim.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from urllib.parse import unquote, urlsplit

from .refuse import refused
from .types import DocumentLimits

_DRIVE = re.compile(r"^[A-Za-z]:")
_SMALL = 64 * 1024  # below this a member's ratio says nothing (an empty file, a page of spaces)


class Archive:
    def __init__(self, data: bytes, name: str, limits: DocumentLimits) -> None:
        self.name = name
        self.limits = limits
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise refused(name, f"is a corrupt zip archive ({exc})") from None
        self._check_members(infos)
        self._infos = {i.filename: i for i in infos if not i.is_dir()}
        self._read = 0

    def _check_members(self, infos: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        if len(infos) > limits.max_members:
            raise refused(self.name, f"has {len(infos)} archive members, more than the {limits.max_members} allowed")
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_unpacked:
            raise refused(self.name, f"would unpack to {declared} bytes, more than the {limits.max_unpacked} allowed")
        for info in infos:
            if unsafe_name(info.filename):
                raise refused(self.name, f"has an archive member with an unsafe path ({info.filename!r}); refused")
            if info.file_size > _SMALL and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                ratio = info.file_size / max(info.compress_size, 1)
                raise refused(self.name, f"has a member ({info.filename}) compressed {ratio:.0f} to 1, "
                              "a zip bomb; refused")  # fmt: skip

    def names(self) -> list[str]:
        return list(self._infos)

    def has(self, path: str) -> bool:
        return path in self._infos

    def read(self, path: str) -> bytes:
        """A member's bytes, counted against ``max_unpacked``; KeyError when there is no such member."""
        info = self._infos[path]
        budget = self.limits.max_unpacked - self._read
        try:
            with self._zip.open(info) as f:
                data = f.read(min(info.file_size, budget) + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: an encrypted member (zip passwords); NotImplementedError: an unknown compression.
            raise refused(self.name, f"is a corrupt zip archive ({path}: {exc})") from None
        self._read += len(data)
        if self._read > self.limits.max_unpacked or len(data) > info.file_size:
            raise refused(self.name, f"unpacks to more than the {self.limits.max_unpacked} bytes allowed, a zip bomb; "
                          "refused")  # fmt: skip
        return data


def unsafe_name(name: str) -> bool:
    return (
        name.startswith("/")
        or "\\" in name
        or bool(_DRIVE.match(name))
        or "\x00" in name
        or ".." in name.split("/")
    )


def resolve(base: str, href: str) -> str | None:
    """The archive path ``href`` names, relative to the member ``base``; None for a link elsewhere (a URL,
    a fragment only). Raises ValueError when it climbs out of the archive root."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if not path:
        return None
    if path.startswith("/") or "\\" in path:
        raise ValueError(href)
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        raise ValueError(href)
    return joined
