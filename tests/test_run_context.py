"""A run's state is one RunContext: a check given one reads and records there only, and an activated run leaves nothing behind."""
from __future__ import annotations

import datetime

import httpx
import pytest

from conformance.contract import checks
from conformance.contract.findings import ACTIVE, FindingLog, RunContext, TestScope, activate, current_run, running
from conformance.contract.ids import RATE_LIMIT_HEADERS, RESPONSE_SHAPE
from conformance.setup.redaction import REDACT

TOKEN = "Bearer tok-authenticated-0123456789"
ARGUMENT_ERROR = {"error": {"code": "invalid_argument", "description": "text",
                            "detail": {"path": ["ip_address"], "index": None, "issue": "ambiguous_lookup_values"}}}


def answer(status: int, body: object, headers: dict[str, str], authorization: str = TOKEN) -> httpx.Response:
    """A response of allocate_ip to a request presenting `authorization`."""
    request = httpx.Request("POST", f"http://target.invalid{checks.ALLOCATE_PATH}", headers={"Authorization": authorization})
    response = httpx.Response(status, json=body, headers=headers, request=request)
    response.elapsed = datetime.timedelta(0)
    return response


def scoped(name: str, *promises: str) -> RunContext:
    """A run whose test `name` exists for these promises."""
    return RunContext(scope=TestScope(name, promises, FindingLog()))


def test_a_check_given_a_run_records_there_and_not_in_the_active_run() -> None:
    """Two runs side by side: each finding lands in the run it was passed to; the active run (idle here) sees nothing."""
    broken = answer(404, {"error": {"code": "ip_address_not_found", "description": "text", "detail": None}},
                    {"X-Request-Id": "r", "X-Api-Schema": "json-error", "X-RateLimit-Permitted": "1000", "X-RateLimit-Remaining": "9"})
    first, second = scoped("test_first", "order of checks"), scoped("test_second", "no side effects")
    assert checks.conforms_to_fragment(broken, status_expected=True, run=first) == {RESPONSE_SHAPE}
    assert checks.conforms_to_fragment(broken, status_expected=True, run=second) == {RESPONSE_SHAPE}
    assert first.scope is not None and second.scope is not None
    assert [f.tests for f in first.scope.log.findings.values()] == [["test_first"]]
    assert [f.tests for f in second.scope.log.findings.values()] == [["test_second"]]
    assert current_run().scope is None and current_run().between_tests is None


def test_the_authenticated_headers_are_the_run_s() -> None:
    """An argument error without X-RateLimit-* is a finding for a token the run knows got past the rate limiter, not for another."""
    bare = {"X-Request-Id": "r", "X-Api-Schema": "json-error"}
    run = RunContext(authenticated=frozenset({TOKEN}))
    with pytest.raises(checks.ConformanceFailure) as raised:
        checks.rate_limit_headers_after_authentication(answer(400, ARGUMENT_ERROR, bare), run)
    assert raised.value.promise == RATE_LIMIT_HEADERS
    assert checks.rate_limit_headers_after_authentication(answer(400, ARGUMENT_ERROR, bare, "Bearer someone-else-0123456789"), run) == []


def test_answers_found_conforming_are_remembered_per_run() -> None:
    """A run validates an answer once and keeps it; another run starts with none of them."""
    good = answer(400, ARGUMENT_ERROR, {"X-Request-Id": "r", "X-Api-Schema": "json-error", "X-RateLimit-Permitted": "1000",
                                        "X-RateLimit-Remaining": "999"})
    run, other = RunContext(), RunContext()
    checks.fragment_shape(good, status_expected=True, run=run)
    assert len(run.conforming) == 1 and other.conforming == set()


def test_an_activated_run_is_put_back_with_its_secrets() -> None:
    """While active, checks not given a run speak for it and its secrets are redacted; afterwards the run and the secrets before it."""
    before = ACTIVE.run
    run = RunContext(secrets=frozenset({"s3cr3t-token-value"}))
    with running(run):
        assert current_run() is run and REDACT("a s3cr3t-token-value b") == "a [redacted] b"
    assert ACTIVE.run is before and REDACT("a s3cr3t-token-value b") == "a s3cr3t-token-value b"
    put_back = activate(run)
    put_back()
    assert ACTIVE.run is before


def test_outside_any_run_a_check_remembers_nothing() -> None:
    """No run active: each call gets an idle run of its own, so nothing a check sees outlives the call."""
    assert ACTIVE.run is None  # no run of the suite in this process outlived itself
    assert current_run() is not current_run() and current_run().conforming == set()


def test_a_failure_is_built_once() -> None:
    """Its facts are constructor arguments and never change after; replaced() makes a new failure and leaves the first as it was."""
    failure = checks.ConformanceFailure("Expected 403 scope_not_granted", "200", "403 scope_not_granted", check="status and code")
    with pytest.raises(AttributeError, match="set once"):
        failure.promise = "403 scope_not_granted"
    with pytest.raises(AttributeError, match="set once"):
        failure.received = "another"
    failure.add_note("a note travels with its copies")
    copy = failure.replaced(received="200, served past the scope check")
    assert (failure.received, copy.received) == ("200", "200, served past the scope check") and type(copy) is type(failure)
    assert copy.__notes__ == ["a note travels with its copies"] and copy.check == failure.check
    with pytest.raises(TypeError, match="not facts of a failure: reason"):
        failure.replaced(reason="x")


def test_report_charges_a_failure_naming_no_promise_by_a_copy() -> None:
    """A failure that names no promise is raised as a copy naming the test's own promise; the one the check built is untouched."""
    failure = checks.ConformanceFailure("Expected 403 scope_not_granted", "200", "403 scope_not_granted", check="status and code")
    run = scoped("test_scope", "403 scope_not_granted")
    with pytest.raises(checks.ConformanceFailure) as raised:
        checks.report(failure, run)
    assert raised.value is not failure and raised.value.promise == "403 scope_not_granted" and raised.value.recorded
    assert failure.promise is None
    assert run.scope is not None and [f.signature.promise for f in run.scope.recorded] == ["403 scope_not_granted"]
