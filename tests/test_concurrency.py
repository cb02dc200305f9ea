"""The concurrency property passes on the faithful mock and catches the allocator that lets two concurrent requests win, in process and live."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from helpers import run_output, unpadded

if TYPE_CHECKING:
    from helpers import RunSuite, ServedMock

CONCURRENCY = ("--pyargs", "conformance.test_concurrency", "-q", "-rf")
ONE_WINNER = "test_one_free_ip_asked_for_twice_at_once_has_one_winner"
MUTANT = "check-then-act-allocator"


def live_args(served: ServedMock, fixtures: Any) -> tuple[str, ...]:
    """The served mock as a live target."""
    return ("--target-url", served.base_url, "--target-fixtures", fixtures.source, "--max-rate", "2000")


@pytest.mark.parametrize("mode", ["in-process", "live"])
def test_faithful_mock_passes_and_double_allocation_is_caught(mode: str, run_suite: RunSuite, serve_mock: Callable[..., ServedMock],
                                                             mock_target_fixtures: Any) -> None:
    """Faithful: every concurrency test passes. Mutant: both one-winner tests fail naming the two 200s; the burst (distinct IPs) passes."""
    if mode == "live":
        faithful = run_suite(*CONCURRENCY, *live_args(serve_mock(), mock_target_fixtures))
        broken = run_suite(*CONCURRENCY, *live_args(serve_mock("--mutant", MUTANT), mock_target_fixtures))
    else:
        faithful = run_suite(*CONCURRENCY)
        broken = run_suite(*CONCURRENCY, "--mock-mutant", MUTANT)
    assert faithful.ret == 0 and "3 passed" in faithful.stdout.str(), run_output(faithful)[-3000:]
    shown = broken.stdout.str()
    assert broken.ret == 1, run_output(broken)[-3000:]
    assert "2 failed, 1 passed" in shown, shown[-3000:]
    failed = [line for line in shown.splitlines() if line.startswith("FAILED ")]
    assert [line.split("::")[-1].split(" ")[0] for line in failed] == [f"{ONE_WINNER}[id]", f"{ONE_WINNER}[address]"], failed
    assert "Two concurrent allocations of one free IP" in shown
    assert shown.count(": 200") >= 2 and "fails concurrency" in unpadded(shown)
