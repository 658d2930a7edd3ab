"""Worker entry point: ``celery -A narrator.tasks.worker worker -Q narrator.cpu``.

Reads the settings from the environment once, here, and configures the app.
"""

from __future__ import annotations

from ..settings import Settings
from . import control  # noqa: F401 - registers the narrator_cancel remote control command
from .app import app, configure

settings = Settings.from_env()
configure(settings)

__all__ = ["app"]
