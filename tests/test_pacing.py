"""A live target is paced and stops at its budget (how it spends rate-limit windows: tests/test_wire.py); an interrupt ends waits."""
from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from conformance.mock.app import VirtualClock
from conformance.wire import api
from conformance.wire.interrupts import Interrupts, WaitCut
from conformance.wire.transport import BudgetExhausted, Pacer, Target

if TYPE_CHECKING:
    from helpers import RunSuite, ServedMock

from helpers import MOCK_TARGET_YAML, SPEND_WINDOW_ON_FIRST_ALLOCATION

pytest_plugins = ["pytester"]


class FakeClock:
    """Time that moves only when slept through."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_requests_at_the_configured_rate() -> None:
    """At 4 requests/s, back-to-back sends wait a quarter second each."""
    clock = FakeClock()
    pacer = Pacer(0.25, clock.sleep, clock)
    for _ in range(3):
        pacer.before_send()
    assert clock.slept == [0.25, 0.25]


def test_budget_stops_sending() -> None:
    """The request after the budget is refused before it is sent, naming the option to raise."""
    sent: list[httpx.Request] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(404)))
    clock = FakeClock()
    target = Target("live", "http://target.invalid/core/v1", client, Pacer(0.0, clock.sleep, clock), timeout=1, max_requests=2)
    target.send("GET", "/x")
    target.send("GET", "/x")
    with pytest.raises(BudgetExhausted, match="--max-requests"):
        target.send("GET", "/x")
    assert len(sent) == 2


def test_a_test_over_budget_is_skipped_with_the_reason_and_cleanup_still_runs(run_suite: RunSuite, served_mock: ServedMock) -> None:
    """A tiny budget skips what it cannot afford, saying so; putting the IPs back is never refused for lack of budget."""
    result = run_suite("--pyargs", "conformance", "-q", "-rs", "--target-url", served_mock.base_url, "--target-fixtures",
                       MOCK_TARGET_YAML, "--max-rate", "1000", "--max-requests", "40", "-k", "test_scenario")
    output = result.stdout.str()
    assert "request budget of 40 is spent; raise --max-requests" in output, output[-3000:]
    assert result.ret == 0, output[-3000:]
    assert "Traceback" not in output and "ERROR" not in output


def counting_down(permitted: int, left: int) -> tuple[list[int], Callable[[], httpx.Response]]:
    """A sender whose server allows `left` more requests in the window, then answers 429; and the statuses it answered."""
    statuses: list[int] = []

    def send() -> httpx.Response:
        remaining = left - len(statuses) - 1
        status = 404 if remaining >= 0 else 429
        statuses.append(status)
        headers = {"X-RateLimit-Permitted": str(permitted), "X-RateLimit-Remaining": str(max(remaining, 0))}
        return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://target.invalid/", headers={"Authorization": "Bearer t"}))

    return statuses, send


def test_provoking_the_429_spends_what_the_window_has_left_and_one_more() -> None:
    """The burst is sized from the first answer's Remaining and ends at the first 429."""
    from conformance.cases.rate_limit import provoke

    statuses, send = counting_down(200, 40)
    provoked = provoke(send)
    assert provoked.burst is not None and provoked.burst.limited is not None
    assert statuses.count(404) == 40 and 1 <= statuses.count(429) <= 2


def test_a_window_end_burst_that_cannot_finish_leaves_the_429_to_its_test() -> None:
    """Inside another test's request, a spent budget does not escape: nothing is provoked, so test_rate_limit_reached bursts itself."""
    from conformance.cases.rate_limit import WindowEndBurst

    def send() -> httpx.Response:
        raise BudgetExhausted("the request budget of 10 is spent; raise --max-requests to run more")

    hook = WindowEndBurst(send)
    hook(httpx.Response(200))
    assert hook.provoked is None


# --- interrupts ---------------------------------------------------------------------------------------------------
class CtrlCInTheFirstWait(FakeClock):
    """A fake clock on which Ctrl-C lands during the first wait of a second or more (KeyboardInterrupt, as the run's handler raises it)."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def sleep(self, seconds: float) -> None:
        if seconds >= 1.0 and not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        super().sleep(seconds)


def limited(remaining: int, permitted: int = 200) -> httpx.Response:
    """An answer to the token `t` with these rate-limit headers."""
    return httpx.Response(200, headers={"X-RateLimit-Permitted": str(permitted), "X-RateLimit-Remaining": str(remaining)},
                          request=httpx.Request("GET", "http://target.invalid/", headers={"Authorization": "Bearer t"}))


def test_an_interrupted_window_wait_is_no_finding_and_is_still_owed() -> None:
    """Ctrl-C while the pacer waits for a spent window's end: it did not wait, so cleanup's first answer still at 0 is no
    stall (no `rate-limit headers` finding); cleanup waits for that window's end instead."""
    clock = CtrlCInTheFirstWait()
    pacer = Pacer(0.0, clock.sleep, clock)
    stalls: list[str] = []
    pacer.on_stall = lambda message, response: stalls.append(message)
    pacer.after_response(limited(199))
    clock.now = 20.0
    with pytest.raises(KeyboardInterrupt):
        pacer.after_response(limited(0))
    pacer.after_response(limited(0), putting_back=True)
    assert stalls == []
    # The window was first seen at 0 s: at 20 s, 40 s are left of it, and a second more to be sure.
    assert clock.slept == [41.0]


@pytest.mark.parametrize(("burst", "waits"), [(True, [41.0]), (False, [])], ids=["after-the-429-burst", "at-the-floor"])
def test_cleanup_waits_out_a_spent_window_whose_wait_was_cut_before_it_sends(burst: bool, waits: list[float]) -> None:
    """After the burst spent the window to nothing, cleanup's first request waits what is left of the cut wait (its answer
    would be a 429, and the 429's own wait a whole window more); at the floor, what is left is enough for cleanup."""
    clock = CtrlCInTheFirstWait()
    pacer = Pacer(0.0, clock.sleep, clock)
    if burst:
        pacer.on_window_spent = lambda response: None
    pacer.after_response(limited(199))
    clock.now = 20.0
    with pytest.raises(KeyboardInterrupt):
        pacer.after_response(limited(40))
    pacer.before_send({"Authorization": "Bearer t"})
    assert clock.slept == waits


def test_the_first_interrupt_ends_other_threads_waits_and_a_second_the_main_threads() -> None:
    """The first interrupt (it stops the tests) ends every wait off the main thread at once; the main thread's cleanup still
    waits what it owes, until another interrupt ends that wait at once too."""
    interrupts = Interrupts()
    cut: list[float] = []

    def waiting() -> None:
        started = time.monotonic()
        try:
            interrupts.sleep(30.0)
        except WaitCut:
            cut.append(time.monotonic() - started)

    worker = threading.Thread(target=waiting)
    worker.start()
    time.sleep(0.1)
    assert interrupts.signalled() is True
    worker.join(5.0)
    assert len(cut) == 1 and cut[0] < 5.0
    interrupts.sleep(0.06)
    threading.Timer(0.1, interrupts.signalled).start()
    started = time.monotonic()
    with pytest.raises(WaitCut):
        interrupts.sleep(30.0)
    assert time.monotonic() - started < 5.0


def test_an_interrupt_once_the_tests_are_over_ends_the_wait_without_raising() -> None:
    """In cleanup and the reports (the tests over), even the first interrupt raises nothing; it ends the waits."""
    interrupts = Interrupts()
    interrupts.tests_over = True
    assert interrupts.signalled() is False
    with pytest.raises(WaitCut):
        interrupts.sleep(30.0)


# Ctrl-C while the pacer waits for the end of a window the run spent, right after a test allocated an IP: the in-process
# mock's token window is spent to its last request as the 429 burst spends it, then a paced request makes the pacer wait.
CTRL_C_IN_A_WINDOW_WAIT = """
import signal

from conformance.mock.app import VirtualClock
from conformance.wire import api
from conformance.wire.paths import READ_IP_PATH

state = {"spent": False, "interrupted": False}
real_allocate, real_advance = api.allocate, VirtualClock.advance


""" + SPEND_WINDOW_ON_FIRST_ALLOCATION + """

def advance(self, seconds):
    if state["spent"] and not state["interrupted"] and seconds >= 1:
        state["interrupted"] = True
        signal.raise_signal(signal.SIGINT)
    real_advance(self, seconds)


api.allocate = allocate
VirtualClock.advance = advance
"""


@pytest.mark.usefixtures("suite_imports_warm")
def test_ctrl_c_in_a_rate_window_wait_invents_no_finding(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                          request: pytest.FixtureRequest) -> None:
    """The issue's run, in process: Ctrl-C during the pacer's wait for a spent window's end, while a test holds an IP. No
    `rate-limit headers` finding; before cleanup waits for the window, it prints the IP's put-back command; then the IP is put
    back, and the run ends interrupted (exit 2), its last line saying so."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    # The plugin patches modules this process keeps after the run (its libraries are imported once, suite_imports_warm): put them back after.
    monkeypatch.setattr(api, "allocate", api.allocate)
    monkeypatch.setattr(VirtualClock, "advance", VirtualClock.advance)
    # Started as a background job of a non-interactive shell (`bash .ci/run &`), this process has SIGINT ignored (POSIX) and the
    # run would never see its Ctrl-C; a terminal's Ctrl-C meets Python's own handler, and so does this run's.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    pytester.makepyfile(ctrl_c_in_a_window_wait=CTRL_C_IN_A_WINDOW_WAIT)
    pytester.syspathinsert()
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess("--pyargs", "conformance.test_scenarios", "-p", "no:cacheprovider", "-p", "ctrl_c_in_a_window_wait",
                                          "-k", "test_allocate_free_ip and id", "--conformance-report", str(report), no_reraise_ctrlc=True)
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert "X-RateLimit-Remaining is still" not in output
    result.stdout.fnmatch_lines([
        "katapult-conformance: interrupted; cleanup waits * s for the rate-limit window to end, then puts back what the tests moved*",
        "  ip_mockFree000000001 (185.199.221.10), started free: curl -sS -X POST '*/ip_addresses/ip_address/unallocate'*",
        "katapult-conformance: cleanup is over; every fixture IP is back in its starting state (the commands above are not needed)",
    ])
    assert ", 1 interrupted in " in output.strip().splitlines()[-1]
    verdicts = {promise["id"]: promise["verdict"] for promise in json.loads(report.read_text(encoding="utf-8"))["promises"]}
    assert verdicts["rate-limit headers"] != "fails" and verdicts["cleanup"] == "conforms"
