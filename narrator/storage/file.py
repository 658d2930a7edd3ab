"""A local folder as object store (the embedded default and tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ObjectNotFound, StorageError
from .base import ObjectStore, StoredObject, check_key


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
            fd, tmp = _temp_beside(dest)
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
        return sorted(p.relative_to(self.root).as_posix() for p in self._files(prefix))

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        found = []
        for path in self._files(prefix):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # deleted since the walk saw it
            found.append(StoredObject(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime))
        return iter(sorted(found, key=lambda o: o.key))

    def _files(self, prefix: str) -> Iterator[Path]:
        if prefix:
            check_key(prefix.rstrip("/"))
        base = self.root / prefix if prefix else self.root
        if base.is_dir():
            yield from (p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_many(self, keys: Iterable[str]) -> int:
        count, folders = 0, set()
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot delete {key}: {exc}") from exc
            folders.add(path.parent)
            count += 1
        self._remove_empty(folders)
        return count

    def _remove_empty(self, folders: Iterable[Path]) -> None:
        # Expired jobs would otherwise leave a tree of empty folders behind. A writer racing
        # this into a folder just removed makes it again (_temp_beside).
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            while folder != self.root and folder.is_relative_to(self.root):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass  # removed by an earlier folder's walk up
                except OSError:
                    break  # not empty: nor are its parents
                folder = folder.parent

    def copy(self, src: str, dst: str) -> None:
        source = self._path(src)
        if not source.is_file():
            raise ObjectNotFound(f"no object {src}")
        self.put_file(dst, source)

    def presigned_url(self, key: str, expires: int) -> str:
        return self._path(key).as_uri()


def _temp_beside(dest: Path) -> tuple[int, str]:
    """A temporary file in ``dest``'s folder; the folder is made again if expiry removed it meanwhile."""
    for _ in range(2):
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        except FileNotFoundError:
            pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
