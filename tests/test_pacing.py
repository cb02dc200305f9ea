"""A live target is paced and stops at its budget (how it spends rate-limit windows: tests/test_wire.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from conformance.wire.transport import BudgetExhausted, Pacer, Target

if TYPE_CHECKING:
    from conftest import RunPytest, ServedMock

from conftest import MOCK_TARGET_YAML


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


def test_a_test_over_budget_is_skipped_with_the_reason_and_cleanup_still_runs(run_pytest: RunPytest, served_mock: ServedMock) -> None:
    """A tiny budget skips what it cannot afford, saying so; putting the IPs back is never refused for lack of budget."""
    result = run_pytest("--pyargs", "conformance", "-q", "-rs", "--target-url", served_mock.base_url, "--target-fixtures",
                        MOCK_TARGET_YAML, "--max-rate", "1000", "--max-requests", "40", "-k", "test_scenario")
    assert "request budget of 40 is spent; raise --max-requests" in result.stdout, result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Traceback" not in result.stdout and "ERROR" not in result.stdout


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
