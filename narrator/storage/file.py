"""A local folder as object store (the embedded default and tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import ObjectNotFound, StorageError
from .base import ObjectStore, check_key


class FileStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage folder {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _atomic_write(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        # Readers must never see half an object: write beside it, then rename.
        dest = self._path(key)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._atomic_write(key, lambda fh: fh.write(data))

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        def write(fh: BinaryIO) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, fh)

        self._atomic_write(key, write)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    def get_file(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key}") from None

    def list(self, prefix: str) -> list[str]:
        if prefix:
            check_key(prefix.rstrip("/"))
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def copy(self, src: str, dst: str) -> None:
        source = self._path(src)
        if not source.is_file():
            raise ObjectNotFound(f"no object {src}")
        self.put_file(dst, source)

    def presigned_url(self, key: str, expires: int) -> str:
        return self._path(key).as_uri()
