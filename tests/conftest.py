"""Shared fixtures. Each fixture family lives in tests/support/<name>.py."""

pytest_plugins = [
    "tests.support.procs",
    "tests.support.moto",
    "tests.support.comfy",
    "tests.support.seaweed",
]
