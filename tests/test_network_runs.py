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


class Dies:
    """A target that answers until it has allocated an IP, then refuses every connection (a crashed server)."""

    def __init__(self) -> None:
        self.dead = False

    def __call__(self, handler: Handler) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            if self.dead:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            response = handler(request)
            self.dead = response.status_code == 200 and request.url.path.endswith("/allocate_ip")
            return response

        return handle


def test_a_target_that_stops_answering_mid_run_stops_it_with_exit_4_and_the_put_back_commands(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dead right after an allocation: the run stops at once (exit 4), says why, and names the IP left moved with its curl."""
    monkeypatch.setattr(inprocess, "NETWORK", Dies())
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess(*SUITE, "--conformance-report", str(report))
    assert result.ret == 4
    output = result.stdout.str()
    assert "stopped answering in the middle of the run" in output
    result.stdout.fnmatch_lines(["*ip_mock*was free, now unknown*to restore it run: curl -sS -X POST *unallocate*"])
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["status"] == "stopped" and "stopped answering" in summary["stopped"]
    assert {p["id"]: p["verdict"] for p in summary["promises"]}["cleanup"] == "fails"


def test_the_reports_and_the_request_log_say_how_healthy_the_network_was(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the injector (5% before, 5% after): the run passes, and the terminal, Markdown and JSON say how many requests were
    retried and why; the request log marks each retried request."""
    monkeypatch.setenv("KATAPULT_MOCK_FAULTS", "drop-before=0.05,drop-after=0.05,seed=4")
    markdown, report, log = pytester.path / "report.md", pytester.path / "report.json", pytester.path / "requests.log"
    result = pytester.runpytest_inprocess(*SUITE, "-p", "conformance.tools.faulty_network", "-k", "test_exclusivity_no_value_is_missing",
                                          "--conformance-report", str(markdown), "--conformance-report", str(report), "--request-log", str(log))
    result.assert_outcomes(passed=1)
    network = json.loads(report.read_text(encoding="utf-8"))["network"]
    assert network["retried"] > 0 and network["requests"] > network["retried"], network
    assert network["line"].startswith(f"{network['retried']} of {network['requests']} requests retried after a dropped connection")
    result.stdout.fnmatch_lines([f"network: {network['line']}"])
    assert f"Network: {network['line']}" in markdown.read_text(encoding="utf-8")
    marked = [line for line in log.read_text(encoding="utf-8").splitlines() if line.endswith("[retried after 1 dropped connection]")]
    assert 0 < len(marked) <= network["retried"]


def test_no_faults_no_network_line_in_process(pytester: pytest.Pytester) -> None:
    """On the embedded mock with no faults, there is no network to speak of: no line (a live run always has one)."""
    result = pytester.runpytest_inprocess(*SUITE, "-k", "test_scenario and missing-token")
    result.assert_outcomes(passed=1)
    assert "network:" not in result.stdout.str()
