"""Shared fixtures. Each fixture family lives in tests/support/<name>.py."""

import os

# The fake ComfyUI speaks buzzing vowels, not words: a speech check would fail every chunk of the
# VibeVoice models (whose model files say "retry"). Tests of the check ask for it per request
# (tests/verify/, tests/pipeline/test_verify.py); every other job, in every process the suite
# starts, runs as the deployment setting NARRATOR_VERIFY=off says.
os.environ["NARRATOR_VERIFY"] = "off"

pytest_plugins = [
    "tests.support.procs",
    "tests.support.moto",
    "tests.support.comfy",
    "tests.support.seaweed",
]
