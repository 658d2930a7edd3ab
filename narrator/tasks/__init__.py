"""Celery: the app, the pipeline tasks, job control. ``celery -A narrator.tasks worker``."""

from .app import CPU_QUEUE, GPU_QUEUE, app, configure
from .pipeline import concatenate, job, stage_input, synthesize, synthesize_chunk, upload

__all__ = [
    "CPU_QUEUE",
    "GPU_QUEUE",
    "app",
    "concatenate",
    "configure",
    "job",
    "stage_input",
    "synthesize",
    "synthesize_chunk",
    "upload",
]
