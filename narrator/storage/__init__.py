"""Object storage: ``file://`` folders and ``s3://`` buckets behind one interface."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import InvalidRequest
from ..settings import Settings
from .base import ObjectStore, check_key
from .file import FileStore

__all__ = ["FileStore", "ObjectStore", "check_key", "open_store"]


def open_store(settings: Settings) -> ObjectStore:
    url = settings.effective_storage_url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from .s3 import S3Store  # boto3 only when S3 is configured

        return S3Store.from_url(url, settings)
    raise InvalidRequest(f"unsupported storage URL {url!r} (file:// or s3://)", field="NARRATOR_STORAGE_URL")
