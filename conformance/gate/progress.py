"""Where a long live run is, on a terminal: tests done of total, requests sent of the budget, elapsed, waiting for the rate window."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pytest

from conformance.gate.keys import CONFIG_KEY, SESSION_KEY

if TYPE_CHECKING:
    import httpx

# The status goes after pytest's own output on the current line while a test runs, redrawn at most once a second, and
# is erased (backspaced over) before pytest writes again, so nothing of it stays on the screen or reaches a log. Only a
# live run whose output is a terminal shows it: not under -q, -s, live logging or xdist (the tests run in a worker).
REDRAW_SECONDS = 1.0
# A test that ends sooner shows nothing: most tests take well under this, and pytest's dot says enough for them.
FIRST_DRAW_SECONDS = 2.0
# Pacing between requests waits a fraction of a second; a wait this long is the rate window (or a 429's Retry-After).
SHOWN_WAIT_SECONDS = 1.0
# Less room than this after pytest's output on the line, and the status is left out rather than cut to nothing.
MIN_ROOM = 16
PLUGIN_NAME = "katapult-conformance-progress"


class Stream(Protocol):
    """Where the status goes: the terminal."""

    def write(self, text: str) -> object: ...

    def flush(self) -> None: ...


def wanted(*, live: bool, tty: bool, verbosity: int, worker_or_controller: bool, collect_only: bool, output_during_tests: bool) -> bool:
    """Whether to show the status: a live run, on a terminal, not -q, not split over xdist, with nothing else writing during tests."""
    return live and tty and verbosity >= 0 and not worker_or_controller and not collect_only and not output_during_tests


def elapsed_text(seconds: float) -> str:
    """42s, 3m07s, 1h02m."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def status_text(done: int, total: int, sent: int, budget: int | None, elapsed: float, waiting: float | None,
                why: str | None = None) -> str:
    """The status, e.g. `[12/56 tests, 143/4000 requests, 1m05s, waiting for the rate window (60 s)]` (short: it shares pytest's line);
    `why` names the window waited for when it is not the run's own (`waiting for a window another client of the token spent`)."""
    parts = [f"{done}/{total} tests", f"{sent}/{budget} requests" if budget is not None else f"{sent} requests", elapsed_text(elapsed)]
    if waiting is not None:
        parts.append(f"waiting for {why or 'the rate window'} ({waiting:.0f} s)")
    return "[" + ", ".join(parts) + "]"


def fitted(text: str, room: int) -> str | None:
    """The status cut to the room left on the line (ending in `...]`), or None when too little is left."""
    if room < MIN_ROOM:
        return None
    return text if len(text) <= room else text[: room - 4] + "...]"


class FdStream:
    """A private duplicate of the terminal's file descriptor: pytest's capture redirects fd 1 during tests, not this one."""

    def __init__(self, fd: int, encoding: str) -> None:
        self.fd = fd
        self.encoding = encoding

    def write(self, text: str) -> int:
        """Write at once (unbuffered)."""
        return os.write(self.fd, text.encode(self.encoding, "replace"))

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Release the duplicate."""
        os.close(self.fd)


@dataclass
class Counts:
    """What the status reports, read when it is drawn."""

    done: int = 0
    total: int = 0
    sent: Callable[[], int] = lambda: 0
    budget: int | None = None


class StatusLine:
    """The status after pytest's output on the current line: drawn while a test runs, erased before pytest writes."""

    def __init__(self, stream: Stream, room: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.room = room
        self.clock = clock
        self.started = clock()
        self.counts = Counts()
        self.test_started: float | None = None
        self.last_drawn = float("-inf")
        self.waiting: float | None = None
        # Why the pacer waits, when it is not for the run's own window (read when the wait starts).
        self.why: Callable[[], str | None] = lambda: None
        self.waiting_why: str | None = None
        self.shown = 0
        self.lock = threading.RLock()

    def text(self) -> str:
        """The status as of now."""
        counts = self.counts
        return status_text(counts.done, counts.total, counts.sent(), counts.budget, self.clock() - self.started, self.waiting,
                           self.waiting_why)

    def tick(self, force: bool = False) -> None:
        """Redraw, if a test has run long enough and the last redraw is a second old (or when forced, for a wait)."""
        with self.lock:
            now = self.clock()
            if self.test_started is None:
                return
            if not force and (now - self.test_started < FIRST_DRAW_SECONDS or now - self.last_drawn < REDRAW_SECONDS):
                return
            self.draw()
            self.last_drawn = now

    def draw(self) -> None:
        """Replace what is shown with the current status (left out when the line has too little room)."""
        with self.lock:
            self.erase()
            # One space before it, and one column kept free at the end so the terminal never wraps the line.
            shown = fitted(self.text(), self.room() - 2)
            if shown is not None:
                self.stream.write(" " + shown)
                self.stream.flush()
                self.shown = len(shown) + 1

    def erase(self) -> None:
        """Back over the status, blank it, and back again: the cursor is where pytest left it."""
        with self.lock:
            if self.shown:
                self.stream.write("\b" * self.shown + " " * self.shown + "\b" * self.shown)
                self.stream.flush()
                self.shown = 0

    def test_starts(self) -> None:
        """A test begins: the status may show once it has run a while."""
        with self.lock:
            self.test_started = self.clock()

    def test_ends(self) -> None:
        """pytest is about to write: nothing of the status may be left on the line."""
        with self.lock:
            self.erase()
            self.test_started = None

    def observe(self, response: httpx.Response) -> None:
        """A response came: redraw, at most once a second."""
        self.tick()

    def pacing_sleep(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """The pacer's sleep, showing a wait for the rate window while it lasts."""

        def wait(seconds: float) -> None:
            if seconds < SHOWN_WAIT_SECONDS:
                sleep(seconds)
                return
            with self.lock:
                self.waiting = seconds
                self.waiting_why = self.why()
                self.tick(force=True)
            try:
                sleep(seconds)
            finally:
                with self.lock:
                    self.waiting = None
                    self.tick(force=True)

        return wait


def stdout_fd() -> int | None:
    """Standard output's descriptor when it is a terminal, else None."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if os.isatty(fd) else None


def output_during_tests(config: pytest.Config) -> bool:
    """Whether something else writes to the terminal while a test runs: -s, or live logging."""
    return config.getoption("capture", "fd") == "no" or bool(config.getini("log_cli")) or config.getoption("log_cli_level", None) is not None


def should_show(config: pytest.Config, tty: bool) -> bool:
    """wanted(), for this run."""
    suite = config.stash.get(CONFIG_KEY, None)
    distributed = hasattr(config, "workerinput") or config.pluginmanager.has_plugin("dsession")
    return wanted(live=suite is not None and suite.is_live, tty=tty, verbosity=config.get_verbosity(), worker_or_controller=distributed,
                  collect_only=bool(config.option.collectonly), output_during_tests=output_during_tests(config))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Decide once the suite is set up (a host run sets it up while collecting): a live run on a terminal gets a status line."""
    config = session.config
    fd = stdout_fd()
    if config.pluginmanager.get_plugin("terminalreporter") is None or not should_show(config, tty=fd is not None):
        return
    assert fd is not None
    stream = FdStream(os.dup(fd), getattr(sys.stdout, "encoding", None) or "utf-8")
    config.add_cleanup(stream.close)
    writer = config.get_terminal_writer()
    status = StatusLine(stream, lambda: writer.fullwidth - writer.width_of_current_line)
    status.counts.total = len(session.items)
    config.pluginmanager.register(ProgressReporter(config, status), PLUGIN_NAME)


class ProgressReporter:
    """Registered only for a run that shows the status: starts it with each test, erases it before pytest writes."""

    def __init__(self, config: pytest.Config, status: StatusLine) -> None:
        self.config = config
        self.status = status

    def attach(self) -> None:
        """Once the suite's session exists: count its requests and show its pacer's waits."""
        session = self.config.stash.get(SESSION_KEY, None)
        if session is None or self.status.observe in session.target.observers:
            return
        target = session.target
        self.status.counts.sent = lambda: target.sent
        self.status.counts.budget = target.max_requests
        target.observers.append(self.status.observe)
        target.pacer.sleep = self.status.pacing_sleep(target.pacer.sleep)
        pacer = target.pacer
        self.status.why = lambda: pacer.waiting_for

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        """A test starts; after its fixtures, the suite's session exists to be watched."""
        # pytest wrote the test's path or name just before: it must be on the terminal before the status goes after it.
        self.config.get_terminal_writer().flush()
        self.status.test_starts()
        try:
            return (yield)
        finally:
            self.attach()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """The test itself runs: the status may show again (the setup's report stopped it)."""
        self.status.test_starts()
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """pytest writes a result next: erase first, and draw no more until the next phase (teardown draws nothing)."""
        self.status.test_ends()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """One more test done."""
        self.status.test_ends()
        self.status.counts.done += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Nothing left on the line for the summary."""
        self.status.test_ends()
