"""The suite run behind a faulty network, in process (issue #25): answers lost after the server acted are never the server's
fault, a request the server drops every time is, and a target that stops answering ends the run with exit 4.

The network is scripted around the embedded mock's handler (conformance.mock.inprocess.NETWORK), so each run takes seconds.
"""
from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from conformance.gate.ledger import AllocationLedger
from conformance.mock import inprocess
from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.mock.faults import CLOSED
from conformance.mock.inprocess import Handler, mock_target
from conformance.setup.fixtures import TargetFixtures
from conformance.wire import api
from conformance.wire.transport import AnswerLost

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("suite_imports_warm")
SUITE = ("--pyargs", "conformance", "-p", "no:cacheprovider", "-p", "no:xdist")


def allocating(ip_id: str) -> Callable[[httpx.Request], bool]:
    """A request that allocates this IP by id with a token (the requests that change state)."""
    return lambda request: (request.url.path.endswith("/allocate_ip") and ip_id.encode() in request.content
                            and "authorization" in request.headers)


class Lossy:
    """Drops the answer to the first `times` requests `drop_after` picks, after the mock acted on them; `left` counts down."""

    def __init__(self, drop_after: Callable[[httpx.Request], bool], times: int) -> None:
        self.drop_after = drop_after
        self.left = times

    def __call__(self, handler: Handler) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            response = handler(request)
            if self.left > 0 and self.drop_after(request):
                self.left -= 1
                raise httpx.RemoteProtocolError(CLOSED, request=request)
            return response

        return handle


def test_an_allocation_whose_answer_was_lost_is_learnt_and_put_back(mock_target_fixtures: TargetFixtures) -> None:
    """The ledger reads what a lost allocation names: moved, that exchange is not sent again (AnswerLost) and the IP is
    marked for cleanup, which puts it back though no answer said it was allocated."""
    clock = VirtualClock()
    mock = ReferenceMock(clock=clock)
    f = mock_target_fixtures
    ip = f.allocatable[0]
    target = mock_target(mock, clock, network=Lossy(allocating(ip.id), 1))
    ledger = AllocationLedger(target, f.credential("valid"))
    ledger.read_start(f.known_ips())
    target.settle = ledger.settle_lost
    with pytest.raises(AnswerLost):
        api.allocate(target, f.credential("valid"), f.network_interface_id, {"id": ip.id})
    assert mock.world.ips[ip.id].allocated_to == f.network_interface_id and ip in ledger.dirty
    assert ledger.restore() == [] and mock.world.ips[ip.id].allocated_to is None


def test_a_scenario_whose_answer_was_lost_runs_again_and_passes(pytester: pytest.Pytester, mock_target_fixtures: TargetFixtures,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Once lost: the test runs again from the IP put back, and judges; nothing is charged to the server."""
    lossy = Lossy(allocating(mock_target_fixtures.allocatable[0].id), 1)
    monkeypatch.setattr(inprocess, "NETWORK", lossy)
    result = pytester.runpytest_inprocess(*SUITE, "-k", "test_allocate_free_ip and id")
    result.assert_outcomes(passed=1)
    assert lossy.left == 0
    result.stdout.fnmatch_lines(["conforms*200 semantics: 1 test(s) judged it, no finding"])


def test_a_scenario_lost_twice_is_not_judged_network_and_fails_require_complete(
        pytester: pytest.Pytester, mock_target_fixtures: TargetFixtures, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lost on its rerun too: `not judged (network)`, a verdict of its own, no finding; --require-complete fails the run on it;
    the IP the lost answers allocated is back as found."""
    monkeypatch.setattr(inprocess, "NETWORK", Lossy(allocating(mock_target_fixtures.allocatable[0].id), 2))
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess(*SUITE, "-k", "test_allocate_free_ip and id", "--require-complete",
                                          "--conformance-report", str(report))
    assert result.ret == 1
    result.stdout.fnmatch_lines(["not judged (network) 200 semantics: the answer to POST *",
                                 "run fails: * not judged (--require-complete): *200 semantics not judged (network)*"])
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert {entry["promise"]: entry["verdict"] for entry in summary["not_judged"]}["200 semantics"] == "not judged (network)"
    assert summary["findings"] == []
    assert {p["id"]: p["verdict"] for p in summary["promises"]}["cleanup"] == "conforms"


def test_a_generated_example_whose_answer_was_lost_is_left_out_alone(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a generated property only that one example is unjudged: the property still runs and passes."""
    lossy = Lossy(lambda request: request.url.path.endswith("/allocate_ip"), 3)
    monkeypatch.setattr(inprocess, "NETWORK", lossy)
    result = pytester.runpytest_inprocess(*SUITE, "-k", "test_stateful_allocation")
    result.assert_outcomes(passed=1)
    assert lossy.left == 0
