"""Schema faults are told by JSON path and rule, and a documented error's detail fields are that error's own promise."""
from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest

from conformance.contract import checks
from conformance.contract.findings import FindingLog, RunContext, TestScope

SCOPE_ERROR = {"error": {"code": "scope_not_granted", "description": "The scope is not granted.", "detail": {"scopes": ["ip_addresses"]}}}
HEADERS = {"X-Request-Id": "4f8e7a52-1c4b-4d7e-9a51-2b9c1d0e6f3a", "X-RateLimit-Permitted": "1000", "X-RateLimit-Remaining": "998",
           "X-Api-Schema": "json-error"}


def answer(status: int, body: Any) -> httpx.Response:
    """A response of allocate_ip with the wire's headers."""
    response = httpx.Response(status, json=body, headers=HEADERS, request=httpx.Request("POST", f"http://target.invalid{checks.ALLOCATE_PATH}"))
    response.elapsed = datetime.timedelta(0)
    return response


def with_detail(code: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An error body of this code with this detail."""
    return {"error": {"code": code, "description": "text", "detail": detail}}


@pytest.mark.parametrize(("status", "body", "told"), [
    (403, with_detail("scope_not_granted", {}), ["error.detail.scopes is missing"]),
    (403, with_detail("scope_not_granted", {"scopes": "ip_addresses"}), ["error.detail.scopes is not an array (it is a string)"]),
    (429, with_detail("rate_limit_reached", {"total_permitted": "200"}), ["error.detail.total_permitted is not an integer (it is a string)"]),
    (403, {"error": {"code": "scope_not_granted", "detail": {"scopes": []}}}, ["error.description is missing"]),
    (403, {"code": "scope_not_granted", "description": "text", "detail": {}}, ["error is missing"]),
    (200, {"virtual_machine_network_interface": {"id": "vmnet_a", "name": "eth0", "virtual_machine": {"id": "vm_a", "name": "a"}, "network": "netw_a",
                                                  "mac_address": "00:00:00:00:00:01", "state": "attached", "ip_addresses": [{"id": "ip_a"}]}},
     ["virtual_machine_network_interface.network is not an object or null (it is a string)",
      "virtual_machine_network_interface.ip_addresses[0].address is missing"]),
])
def test_a_fault_is_told_by_path_and_rule(status: int, body: Any, told: list[str]) -> None:
    """Each fault names where it is and the rule it breaks, inside a oneOf too (the branch the body meant)."""
    assert sorted(violation.text for violation in checks.body_violations(answer(status, body))) == sorted(told)


def test_an_undocumented_code_names_the_documented_ones() -> None:
    """A code no branch of the status documents is told as such, not as every branch's faults."""
    (violation,) = checks.body_violations(answer(403, with_detail("forbidden", {})))
    assert violation.text.startswith('error.code is "forbidden", not one of the documented ') and '"scope_not_granted"' in violation.text


def shape_failure(response: httpx.Response) -> checks.ConformanceFailure:
    """What fragment_shape raises for the response."""
    with pytest.raises(checks.ConformanceFailure) as raised:
        checks.fragment_shape(response, status_expected=True)
    return raised.value


def test_a_detail_fault_fails_the_errors_own_promise_in_one_line() -> None:
    """403 scope_not_granted without detail.scopes: a finding of 403 scope_not_granted, its first line naming the path, no schema dump."""
    failure = shape_failure(answer(403, with_detail("scope_not_granted", {})))
    assert failure.promise == "403 scope_not_granted"
    assert failure.title == failure.received == "error.detail.scopes is missing"
    assert failure.check == "Response violates schema"
    assert "ScopeNotGrantedError" in failure.expected
    head = str(failure).splitlines()[0]
    assert head.startswith("error.detail.scopes is missing: expected ") and "oneOf" not in str(failure) and "Schema" not in str(failure)


def test_a_fault_outside_the_detail_stays_with_the_response_shape() -> None:
    """A missing envelope or description is the response shape's; a 200's fault is the 200 shape's."""
    assert shape_failure(answer(403, {"error": {"code": "scope_not_granted", "detail": {"scopes": []}}})).promise == checks.RESPONSE_SHAPE
    unwrapped = shape_failure(answer(403, {"code": "scope_not_granted", "description": "text", "detail": {}}))
    assert unwrapped.promise == checks.RESPONSE_SHAPE and unwrapped.title == "error is missing"
    assert "#/components/schemas/" not in unwrapped.expected  # it meant no branch more than another


@pytest.mark.parametrize(("status", "code", "detail"), [
    (404, "ip_address_not_found", None), (400, "missing_api_token", None), (422, "invalid_ip", "none"), (403, "scope_not_granted", None),
])
def test_a_detail_that_is_not_an_object_is_the_envelope_s_fault(status: int, code: str, detail: Any) -> None:
    """`detail: null` (or any non-object) breaks the envelope every error shares: the response shape's, whichever code shows it,
    so one such server fails one promise, not one per code."""
    failure = shape_failure(answer(status, {"error": {"code": code, "description": "text", "detail": detail}}))
    assert failure.promise == checks.RESPONSE_SHAPE and failure.title.startswith("error.detail is not an object")


def test_a_conforming_error_passes() -> None:
    """The faithful body: no violation, no failure."""
    assert checks.body_violations(answer(403, SCOPE_ERROR)) == []
    assert checks.fragment_shape(answer(403, SCOPE_ERROR), status_expected=True) == [checks.RESPONSE_SHAPE]


def test_the_scenario_for_the_error_fails_and_other_tests_only_record_it() -> None:
    """Seen in the error's own test the fault fails it; seen in another test it is recorded under the error's promise, the test goes on."""
    log = FindingLog()
    response = answer(403, with_detail("scope_not_granted", {}))
    run = RunContext(scope=TestScope("test_order", ("order of checks",), log))
    assert checks.conforms_to_fragment(response, status_expected=True, run=run) == {"403 scope_not_granted"}
    run.scope = TestScope("test_scope", ("403 scope_not_granted",), log)
    with pytest.raises(checks.ConformanceFailure):
        checks.conforms_to_fragment(response, status_expected=True, run=run)
    (finding,) = log.findings.values()
    assert finding.signature.promise == "403 scope_not_granted" and finding.tests == ["test_order", "test_scope"] and finding.count == 2
