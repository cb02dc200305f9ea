"""The run's interrupts (Ctrl-C, SIGINT, SIGTERM) as every wait sees them: each wait ends at once when a signal is meant to end it."""
from __future__ import annotations

import threading
import time

# How often a wait looks at the count: a signal ends it within this much (a handler cannot wake a sleeping thread safely).
SLICE_SECONDS = 0.05


class WaitCut(Exception):
    """A wait ended by an interrupt before its time: whatever it waited for was not done."""


class Interrupts:
    """How many interrupts the run got, and whether the run is past its tests (its final cleanup and reports).

    The first, while tests run, stops them (the signal handler raises KeyboardInterrupt in the main thread); a wait on
    another thread (a burst, a concurrency case) ends with it. Cleanup then still waits what it owes on the main thread;
    any later interrupt (or a first one once the tests are over) ends every wait at once, and raises nothing in the
    middle of cleanup or of the reports.
    """

    def __init__(self) -> None:
        self.count = 0
        # 1 once an interrupt has stopped the tests: the main thread's waits owed by cleanup outlive that one.
        self.spared = 0
        self.tests_over = False

    def reset(self) -> None:
        """A new run: no interrupt yet."""
        self.count = self.spared = 0
        self.tests_over = False

    def signalled(self) -> bool:
        """Count one interrupt; whether it should stop the tests (the first, while they run) by KeyboardInterrupt."""
        self.count += 1
        if self.count == 1 and not self.tests_over:
            self.spared = 1
            return True
        return False

    @property
    def stopping(self) -> bool:
        """Whether the run was interrupted."""
        return self.count > 0

    def cuts(self) -> bool:
        """Whether a wait on this thread must end now: on the main thread after an interrupt that did not stop the tests
        (a second one, or one once they were over); off it, after any."""
        if threading.current_thread() is threading.main_thread():
            return self.count > self.spared
        return self.count > 0

    def sleep(self, seconds: float) -> None:
        """Sleep in real time, raising WaitCut as soon as an interrupt ends the wait."""
        deadline = time.monotonic() + seconds
        while True:
            if self.cuts():
                raise WaitCut("interrupted again, the wait was cut short" if self.count > 1 else "interrupted, the wait was cut short")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, SLICE_SECONDS))


# The process's one record of its interrupts (signals reach a process, not an object); the plugin resets it for each run.
INTERRUPTS = Interrupts()


def interruptible_sleep(seconds: float) -> None:
    """A real-time sleep that an interrupt ends (see Interrupts.cuts)."""
    INTERRUPTS.sleep(seconds)
