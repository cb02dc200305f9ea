"""A pytest plugin for bench/bench.py's live count (`-p fast_clock_test`, bench/ on PYTHONPATH): a live target paces by a clock
KATAPULT_BENCH_CLOCK_SCALE times as fast (default 6).

Served with `--window-seconds 10`, the mock's 10 s rate window is the suite's 60 s one on that clock: pacing, the wait for
a new window after the 429 burst and every other wait last a sixth as long, and the run sends the requests a default run
against a 60 s window sends. Nothing else changes: the requests are still sent one by one over loopback, each timed out
and budgeted as usual.

The name ends in `_test` so that hypothesis, which draws on the constants of the local modules loaded but skips test
files, generates the same cases as a run without this plugin.
"""
from __future__ import annotations

import os
import time

from conformance.wire import transport

SCALE = float(os.environ.get("KATAPULT_BENCH_CLOCK_SCALE", "6"))


def sleep(seconds: float) -> None:
    """Wait a SCALE-th of the time asked."""
    time.sleep(seconds / SCALE)


def now() -> float:
    """Seconds on the fast clock."""
    return time.monotonic() * SCALE


transport.LIVE_CLOCK = (sleep, now)
