"""Each promise of the scenario table, broken on the mock one behaviour at a time, fails the matching scenario."""
from __future__ import annotations

import json

import pytest
from helpers import RunSuite

pytest_plugins = ["pytester"]

# mutant -> (the scenario that must fail, a phrase its failure message must carry)
BROKEN = {
    "200-missing-mac-address": ("test_allocate_free_ip[id]", "mac_address"),
    "hang-on-allocate-by-address": ("test_allocate_free_ip[address]", "no response"),
    "200-returns-other-interface": ("test_allocate_free_ip[id]", "200 returns another interface"),
    "200-omits-allocated-ip": ("test_allocate_free_ip[id]", "Allocated IP missing from ip_addresses"),
    "allocates-to-other-interface": ("test_allocate_free_ip[id]", "IP not held by the interface's virtual machine"),
    "200-lists-only-new-ip": ("test_allocate_free_ip[id]", "200 drops IPs the interface held"),
    "allocation-names-interface": ("test_allocate_free_ip[id]", "IP not held by the interface's virtual machine"),
    "missing-token-401": ("test_scenario[missing-token]", "expected 400 missing_api_token, received 401 missing_api_token"),
    "non-bearer-scheme-accepted": ("test_scenario[non-bearer-token]", "expected 400 missing_api_token"),
    "invalid-token-401": ("test_scenario[invalid-token]", "Broken promise (403 invalid_api_token)"),
    "network-error-names-allowed-network": ("test_scenario[unauthorized-network]", "is not an IP address"),
    "capabilities-token-as-invalid-api-token": ("test_scenario[invalid-capabilities]", "Broken promise (403 invalid_capabilities_token)"),
    "not-found-codes-swapped": ("test_scenario[interface-not-found]", "expected 404 virtual_machine_network_interface_not_found"),
    "already-allocated-409": ("test_scenario[already-allocated-by-id]", "expected 422 ip_already_allocated, received 409 ip_already_allocated"),
    "already-allocated-ip-moved": ("test_scenario[already-allocated-by-id]", "expected 422 ip_already_allocated"),
    "invalid-ip-unchecked": ("test_scenario[invalid-ip]", "expected 422 invalid_ip"),
    "rate-limit-never-429": ("test_rate_limit_reached", "No 429 past the rate limit"),
    "maintenance-ignored": ("test_service_unavailable", "expected 503 service_unavailable"),
    "exclusivity-id-wins": ("test_scenario[exclusive-two-ips]", "expected 400 invalid_argument, received 200"),
    "empty-lookup-accepted": ("test_scenario[exclusive-empty-lookup]", "missing_lookup_value"),
    "null-is-a-value": ("test_scenario[exclusive-null-is-no-value]", "expected 404 ip_address_not_found"),
    "arguments-before-authentication": ("test_scenario[order-no-token-broken-body]", "expected 400 missing_api_token"),
    "scope-after-arguments": ("test_scenario[order-no-scope-broken-body]", "expected 403 scope_not_granted"),
    "422-still-allocates": ("test_scenario[invalid-ip]", "Rejected request changed an allocation"),
    "ambiguous-still-allocates": ("test_scenario[exclusive-same-ip]", "Rejected request changed an allocation"),
    "scope-denied-still-allocates": ("test_scenario[scope-not-granted]", "Rejected request changed an allocation"),
    "path-segment-ignored": ("test_scenario[interface-from-literal-path]", "expected 404 virtual_machine_network_interface_not_found"),
    "null-interface-filled-from-path": ("test_scenario[interface-null-is-missing]", "expected 400 missing_required_argument"),
    "query-string-ignored": ("test_scenario[query-fills-missing-lookup]", "expected 404 ip_address_not_found"),
    "query-wins-over-body": ("test_scenario[body-wins-over-query]", "expected 404 ip_address_not_found"),
    "json-read-whatever-content-type": ("test_scenario[json-as-text-plain-ignored]", "expected 400 missing_required_argument"),
    "non-object-body-invalid-json": ("test_scenario[null-body-has-no-arguments]", "expected 400 missing_required_argument"),
    "500-on-non-utf8-body": ("test_scenario[body-not-utf8]", "Server error on malformed bytes"),
    # A documented error missing or mistyping a field of its detail breaks that error's promise, told by JSON path.
    "scope-error-without-scopes": ("test_scenario[scope-not-granted]", "error.detail.scopes is missing"),
    "429-total-permitted-string": ("test_rate_limit_reached", "error.detail.total_permitted is not an integer"),
}
# Deviations of a promise the scenarios do not exist for: no scenario fails for them, the run does, and the finding says why.
FOUND = {
    "errors-unwrapped": ("response shape", "finding: response shape · Response violates schema · 400 · seen"),
    "request-id-empty": ("X-Request-Id on every response", "finding: X-Request-Id on every response · header X-Request-Id"),
    "errors-without-x-api-schema": ("X-Api-Schema on errors", "finding: X-Api-Schema on errors · header X-Api-Schema"),
    "success-with-x-api-schema": ("X-Api-Schema on errors", "finding: X-Api-Schema on errors · header X-Api-Schema · 200"),
    "errors-without-rate-limit-headers": ("rate-limit headers", "finding: rate-limit headers · header X-RateLimit-Permitted · 404"),
}


def test_faithful_mock_passes_every_scenario(run_suite: RunSuite) -> None:
    """No scenario fails on the faithful mock."""
    result = run_suite("--pyargs", "conformance.test_scenarios", "-q")
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 25, result.stdout.str()[-3000:]


@pytest.mark.parametrize("mutant", sorted(BROKEN))
def test_broken_promise_fails_its_scenario(mutant: str, run_suite: RunSuite) -> None:
    """The scenario for the broken promise fails, and its message names what broke."""
    scenario, phrase = BROKEN[mutant]
    # That scenario alone: whether it fails, and says why, is what is checked (the faithful run above holds the others).
    result = run_suite("--pyargs", "conformance.test_scenarios", "-q", "-rf", "--mock-mutant", mutant, "--request-timeout", "2",
                       "-k", scenario)
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert any(f"::{scenario}" in line for line in failed), f"{scenario} did not fail under {mutant}:\n" + "\n".join(failed)
    section = output.split(f"_ {scenario} _", 1)
    assert len(section) == 2, output[-3000:]
    assert phrase in section[1], f"the failure of {scenario} does not say {phrase!r}:\n{section[1][:3000]}"


@pytest.mark.parametrize("mutant", sorted(FOUND))
def test_header_or_shape_deviation_fails_only_its_own_promise(mutant: str, pytester: pytest.Pytester, run_suite: RunSuite) -> None:
    """A header or shape deviation fails no scenario (none exists for it): it is a finding of its promise alone, and the run fails."""
    promise, phrase = FOUND[mutant]
    report = pytester.path / "report.json"
    result = run_suite("--pyargs", "conformance.test_scenarios", "-q", "--mock-mutant", mutant, "--request-timeout", "2",
                       "--conformance-report", str(report))
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert phrase in output, f"no finding {phrase!r} under {mutant}:\n{output[-3000:]}"
    failing = {p["id"] for p in json.loads(report.read_text(encoding="utf-8"))["promises"] if p["verdict"] == "fails"}
    assert failing == {promise}, f"{mutant} should fail only {promise!r}, not {sorted(failing - {promise})}"


MINIMAL_FIXTURES = """\
credentials:
  valid: kmock-valid-7d1e0c5a9b
network_interface:
  id: vmnet_mockAlpha000001
ip_addresses:
  allocatable:
    - {id: ip_mockFree000000001, address: 185.199.221.10}
"""


def test_scenarios_without_their_fixture_entry_are_skipped_naming_the_key(pytester: pytest.Pytester, run_suite: RunSuite) -> None:
    """With only the required entries, every scenario that needs more is skipped, and the reason names the key."""
    fixtures = pytester.makefile(".yaml", minimal=MINIMAL_FIXTURES)
    result = run_suite("--pyargs", "conformance.test_scenarios", "-q", "-rs", "--target-fixtures", str(fixtures))
    output = result.stdout.str()
    assert result.ret == 0, output[-3000:]
    for key in ("credentials.without_scope", "credentials.network_restricted", "credentials.invalid_capabilities",
                "ip_addresses.allocated_elsewhere", "ip_addresses.invalid_for_interface", "rate_limit.provoke: true"):
        assert f"needs {key} in the target fixtures" in output, f"no skip names {key}:\n{output[-3000:]}"
