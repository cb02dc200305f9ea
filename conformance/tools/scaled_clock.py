"""A pytest plugin for runs against a served mock whose rate window is short (`-p conformance.tools.scaled_clock`): a live
target paces by a clock KATAPULT_CLOCK_SCALE times as fast (default 6).

Served with `--window-seconds 10`, the mock's 10 s rate window is the suite's 60 s one on that clock: pacing, the waits
for a window's end and every other wait last a sixth as long, and the run sends the requests a default run against a
60 s window sends. Nothing else changes: the requests are still sent over loopback, each timed out and budgeted as usual.
The bench's live count and `katapult-conformance mutants --live-pace suite` use it; a real target never should.
"""
from __future__ import annotations

import os
import time

from conformance.wire import transport
from conformance.wire.interrupts import interruptible_sleep

SCALE = float(os.environ.get("KATAPULT_CLOCK_SCALE", "6"))


def sleep(seconds: float) -> None:
    """Wait a SCALE-th of the time asked (an interrupt ends it as it ends the live clock's waits)."""
    interruptible_sleep(seconds / SCALE)


def now() -> float:
    """Seconds on the fast clock."""
    return time.monotonic() * SCALE


transport.LIVE_CLOCK = (sleep, now)
