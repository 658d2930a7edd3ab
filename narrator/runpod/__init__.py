"""RunPod serverless: input and output formatting, following a job, posting to RunPod.

The entry point is :mod:`narrator.runpod_handler`. Only :mod:`.channel` imports the
``runpod`` SDK, so the rest is importable (and testable) without it.
"""
