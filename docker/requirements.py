"""Print narrator's dependencies (install_requires plus the named extras) from setup.cfg.

The images install these in their own layer before the narrator package, so a code
change does not reinstall them: ``python requirements.py setup.cfg sqs flower``.
"""

from __future__ import annotations

import configparser
import sys


def requirements(setup_cfg: str, extras: list[str]) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    wanted = _lines(parser.get("options", "install_requires", fallback=""))
    for extra in extras:
        if not parser.has_option("options.extras_require", extra):
            raise SystemExit(f"setup.cfg has no extra {extra!r}")
        wanted += _lines(parser.get("options.extras_require", extra))
    return list(dict.fromkeys(wanted))


def _lines(value: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in value.splitlines() if line.split("#", 1)[0].strip()]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
