"""Ctrl-C, SIGINT and SIGTERM in a run of the suite: the first stops the tests, cleanup says what it still has to put back
before it waits for a rate-limit window, and a later one ends every wait at once; none of them leaves a traceback."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

import pytest

from conformance.gate.ledger import AllocationLedger
from conformance.setup.fixtures import IPRef
from conformance.wire.interrupts import INTERRUPTS

# A shorter wait is the pacing between two requests; from this long (on the pacer's clock) on, cleanup says why it waits.
NOTICE_SECONDS = 1.0
PREFIX = "katapult-conformance"


def handle_signals(config: pytest.Config) -> None:
    """Take SIGINT and SIGTERM for this run (CI runners stop jobs with either): the first, while tests run, is Ctrl-C as pytest
    knows it (the tests stop, cleanup and the reports still run, exit 2); any other only ends waits (see INTERRUPTS)."""
    INTERRUPTS.reset()
    config.pluginmanager.register(TestsOver(), "katapult-conformance-signals")
    config.add_cleanup(INTERRUPTS.reset)
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if INTERRUPTS.signalled():
            raise KeyboardInterrupt() if signum == signal.SIGINT else KeyboardInterrupt(f"signal {signum}")

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        # A signal the run was started with ignored (a background job of a shell ignores SIGINT) stays ignored.
        if current is not signal.SIG_IGN and current is not None:
            previous[signum] = signal.signal(signum, interrupt)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    config.add_cleanup(restore)


class TestsOver:
    """From the session's end on, an interrupt stops nothing by raising: what is left is cleanup and the reports."""

    __test__ = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """The tests are over."""
        INTERRUPTS.tests_over = True


def tests_over() -> None:
    """The tests are over (the session's cleanup begins)."""
    INTERRUPTS.tests_over = True


class CleanupNotice:
    """After an interrupt, before each wait cleanup owes the rate-limit window: the wait, and (once) the put-back commands of
    what may not be back, so a job killed during the wait (a CI runner's SIGKILL follows its SIGTERM within seconds) has
    them in its log."""

    def __init__(self, ledger: AllocationLedger, write: Callable[[str], None]) -> None:
        self.ledger = ledger
        self.write = write
        self.announced = False
        self.commands_shown = False

    def wrap(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """The pacer's sleep, announced when cleanup waits after an interrupt."""

        def wait(seconds: float) -> None:
            if INTERRUPTS.stopping and seconds >= NOTICE_SECONDS and not INTERRUPTS.cuts():
                self.announce(seconds)
            sleep(seconds)

        return wait

    def announce(self, seconds: float) -> None:
        """Say what the wait is for; the first time, also the commands that put back what cleanup has not put back yet."""
        if self.announced:
            self.write(f"{PREFIX}: cleanup waits {seconds:.0f} s more for the rate-limit window to end (Ctrl-C again to stop waiting)")
            return
        self.announced = True
        pending = self.ledger.pending()
        if not pending:
            self.write(f"{PREFIX}: interrupted; cleanup waits {seconds:.0f} s for the rate-limit window to end, then checks that every"
                       " fixture IP is as it started (Ctrl-C again to stop waiting)")
            return
        self.write(f"{PREFIX}: interrupted; cleanup waits {seconds:.0f} s for the rate-limit window to end, then puts back what the"
                   f" tests moved (Ctrl-C again to stop waiting). Until it says so, these commands put them back:")
        self.commands_shown = True
        for drift in pending:
            self.write(f"  {drift.ip.id} ({drift.ip.address}), started {drift.started or 'free'}: {drift.fix}")

    def outcome(self, not_back: int, unchecked: int) -> None:
        """After an announcement: how cleanup ended, and whether the commands it printed are still needed."""
        if not self.announced:
            return
        if not_back:
            self.write(f"{PREFIX}: cleanup is over; {not_back} fixture IP(s) are not back in their starting state (named below,"
                       " each with its command)")
        elif unchecked:
            self.write(f"{PREFIX}: cleanup is over; every fixture IP the tests moved is back, {unchecked} were not read again (named below)")
        else:
            self.write(f"{PREFIX}: cleanup is over; every fixture IP is back in its starting state"
                       + (" (the commands above are not needed)" if self.commands_shown else ""))


def unchecked_message(ips: list[IPRef]) -> str:
    """The fixture IPs a second interrupt left unread at the end (nothing had moved them when last read)."""
    named = ", ".join(f"{ip.id} ({ip.address})" for ip in ips)
    return (f"{PREFIX}: interrupted again before the end-of-run check read {named}; nothing the tests sent had moved them when they"
            " were last read. `katapult-conformance doctor` with the same options reads every fixture IP")


def terminal_writer(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal now, flushed (a CI log may be cut by SIGKILL right after)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def write(line: str) -> None:
        if terminal is None:
            return
        writer = config.get_terminal_writer()
        if writer.width_of_current_line:
            writer.line()
        terminal.write_line(line, yellow=True)
        terminal.flush()

    return write
