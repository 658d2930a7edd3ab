"""``python -m narrator.cli``."""

import sys

from . import main

sys.exit(main())
