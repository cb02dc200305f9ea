"""`python -m conformance.tools.replay`: the same as `katapult-conformance replay`."""
from __future__ import annotations

import sys

from conformance.tools.replay.main import main

if __name__ == "__main__":
    sys.exit(main())
