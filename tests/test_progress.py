"""The live status line: shown only for a live run on a terminal without -q; its text; drawn at a bounded rate and erased without a trace."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from helpers import MOCK_TARGET_YAML, ServedMock

from conformance.gate import progress
from conformance.gate.progress import StatusLine, fitted, status_text, wanted
from conformance.gate.runlock import LOCK_DIR_ENV

pytest_plugins = ("pytester",)

LIVE = {"live": True, "tty": True, "verbosity": 0, "worker_or_controller": False, "collect_only": False, "output_during_tests": False}


class Clock:
    """Time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def screen(written: str) -> tuple[str, int]:
    """What a terminal shows on the line after `written` (backspace moves left, other characters overwrite), and the cursor's column."""
    line: list[str] = []
    column = 0
    for char in written:
        if char == "\b":
            column = max(0, column - 1)
            continue
        if column < len(line):
            line[column] = char
        else:
            line.append(char)
        column += 1
    return "".join(line).rstrip(), column


def test_shown_only_for_a_live_run_on_a_terminal() -> None:
    """A live run on a terminal at normal verbosity shows it; a pipe, -q, the mock, xdist, --collect-only, -s or live logs do not."""
    assert wanted(**LIVE)
    for change in ({"tty": False}, {"verbosity": -1}, {"live": False}, {"worker_or_controller": True}, {"collect_only": True},
                   {"output_during_tests": True}):
        assert not wanted(**(LIVE | change)), change
    assert wanted(**(LIVE | {"verbosity": 2}))


@pytest.mark.parametrize(("args", "shown"), [
    ((), True),
    (("-q",), False),
    (("-s",), False),
    (("--log-cli-level", "INFO"), False),
    (("--mock",), False),
], ids=["live", "quiet", "no-capture", "live-logs", "mock"])
def test_the_decision_reads_the_runs_options(args: tuple[str, ...], shown: bool, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """should_show() on a real configuration of the suite (a terminal assumed): the options above decide."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    target = () if "--mock" in args else ("--target-url", "http://127.0.0.1:9/core/v1", "--target-fixtures", str(MOCK_TARGET_YAML))
    config = pytester.parseconfigure("-p", "no:cacheprovider", "--pyargs", "conformance", *target, *(arg for arg in args if arg != "--mock"))
    assert progress.should_show(config, tty=True) is shown
    assert not progress.should_show(config, tty=False)


def test_status_text() -> None:
    """Tests done of total, requests of the budget, elapsed, and the wait when there is one; cut to the room left, or left out."""
    assert status_text(12, 56, 143, 4000, 65.4, None) == "[12/56 tests, 143/4000 requests, 1m05s]"
    assert status_text(0, 3, 7, None, 9, 60.0) == "[0/3 tests, 7 requests, 9s, waiting for the rate window (60 s)]"
    assert status_text(1, 2, 3, 4, 3725, None).endswith(", 1h02m]")
    full = status_text(12, 56, 143, 4000, 65, 60.0)
    assert fitted(full, 200) == full
    assert fitted(full, 30) == full[:26] + "...]" and len(fitted(full, 30) or "") == 30
    assert fitted(full, 10) is None


def test_drawn_after_a_while_at_most_once_a_second_and_erased_without_a_trace() -> None:
    """Nothing in a test's first seconds; then one redraw a second however many responses come; erasing leaves pytest's line as it was."""
    clock, stream = Clock(), io.StringIO()
    pytest_line = "conformance/test_generated.py ..."
    stream.write(pytest_line)
    status = StatusLine(stream, room=lambda: 120 - len(pytest_line), clock=clock)
    status.counts.total, status.counts.budget = 56, 4000
    status.counts.sent = lambda: 143
    status.test_starts()
    for _ in range(50):
        status.observe(None)  # type: ignore[arg-type]
    assert stream.getvalue() == pytest_line
    clock.now += progress.FIRST_DRAW_SECONDS
    for _ in range(50):
        status.observe(None)  # type: ignore[arg-type]
        clock.now += 0.01
    shown, _ = screen(stream.getvalue())
    assert shown == pytest_line + " [0/56 tests, 143/4000 requests, 2s]"
    assert stream.getvalue().count("[0/56 tests") == 1
    clock.now += progress.REDRAW_SECONDS
    status.observe(None)  # type: ignore[arg-type]
    assert stream.getvalue().count("[0/56 tests") == 2
    status.test_ends()
    assert screen(stream.getvalue()) == (pytest_line, len(pytest_line))
    clock.now += 10
    status.observe(None)  # type: ignore[arg-type]
    assert screen(stream.getvalue()) == (pytest_line, len(pytest_line)), "drawn outside a test"


def test_no_room_no_status() -> None:
    """When pytest's own output fills the line, the status is left out rather than wrapped onto the next one."""
    clock, stream = Clock(), io.StringIO()
    status = StatusLine(stream, room=lambda: progress.MIN_ROOM + 1, clock=clock)
    status.test_starts()
    clock.now += 60
    status.tick(force=True)
    assert stream.getvalue() == ""


def test_a_pacing_wait_shows_while_it_lasts() -> None:
    """A wait for the rate window shows at once (no second rule) and goes when it ends; the short gaps of pacing show nothing."""
    clock, stream = Clock(), io.StringIO()
    status = StatusLine(stream, room=lambda: 150, clock=clock)
    status.test_starts()
    seen_while_waiting: list[str] = []

    def sleep(seconds: float) -> None:
        seen_while_waiting.append(screen(stream.getvalue())[0])
        clock.now += seconds

    paced = status.pacing_sleep(sleep)
    paced(0.2)
    assert seen_while_waiting == [""] and stream.getvalue() == ""
    paced(60.0)
    assert seen_while_waiting[1].endswith(", waiting for the rate window (60 s)]")
    assert "waiting" not in screen(stream.getvalue())[0]


def test_a_live_run_draws_on_the_terminal_only(pytester: pytest.Pytester, served_mock: ServedMock, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """In process against the served mock, the terminal a pipe: the status goes there (erased at the end), not into pytest's output; not with -q."""
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(progress, "FIRST_DRAW_SECONDS", 0.0)
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)
    args = ("-p", "no:cacheprovider", "-p", "no:xdist", "--pyargs", "conformance", "-k", "test_allocate_free_ip",
            "--target-url", served_mock.base_url, "--target-fixtures", str(MOCK_TARGET_YAML), "--max-rate", "1000")
    for quiet, expect_drawn in ((False, True), (True, False)):
        read_end, write_end = os.pipe()
        monkeypatch.setattr(progress, "stdout_fd", lambda write_end=write_end: write_end)
        result = pytester.runpytest_inprocess(*args, *(("-q",) if quiet else ()))
        os.close(write_end)
        with os.fdopen(read_end, encoding="utf-8") as terminal:
            drawn = terminal.read()
        assert result.ret == 0, result.stdout.str()[-3000:]
        assert "/4000 requests" not in result.stdout.str()
        if expect_drawn:
            assert "[0/2 tests, " in drawn and "/4000 requests, " in drawn
            assert screen(drawn)[0] == "", "the status was not erased"
        else:
            assert drawn == ""
