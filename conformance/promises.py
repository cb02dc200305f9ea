"""The documented promises of allocate_ip, which tests speak for each, and each promise's verdict from their outcomes.

A test names its promises with `@pytest.mark.promise("403 scope_not_granted", ...)`. A failure counts against the
first one, unless the failing check names another of them (`ConformanceFailure(..., promise="no side effects")`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

MARKER = "promise"
PASSED, FAILED, SKIPPED, DEVIATION = "passed", "failed", "skipped", "known deviation"
CONFORMS, FAILS, NOT_PROVOKED, KNOWN_DEVIATION, NOT_RUN = "conforms", "fails", "not provoked", "known deviation", "not run"


@dataclass(frozen=True)
class Promise:
    """One documented behaviour: its id, what it says, and the fixture key it cannot be provoked without (if any)."""

    id: str
    description: str
    needs: str | None = None


PROMISES = (
    Promise("200 shape", "a successful allocation answers 200 with the interface in the documented shape", "ip_addresses.allocatable"),
    Promise("200 semantics", "the IP asked for (by id or address) is then held by the interface asked for, which lists it",
            "ip_addresses.allocatable"),
    Promise("400 missing_api_token", "a request without a Bearer token gets 400 missing_api_token"),
    Promise("403 invalid_api_token", "a token that does not exist gets 403 invalid_api_token"),
    Promise("403 scope_not_granted", "a token without the ip_addresses scope gets 403 scope_not_granted naming it",
            "credentials.without_scope"),
    Promise("403 unauthorized_network_for_api_token", "a token used from a network it is not allowed from gets 403 naming the caller",
            "credentials.network_restricted"),
    Promise("403 invalid_capabilities_token", "an invalid capabilities token gets 403 invalid_capabilities_token",
            "credentials.invalid_capabilities"),
    Promise("404 virtual_machine_network_interface_not_found", "an unknown interface gets 404 virtual_machine_network_interface_not_found"),
    Promise("404 ip_address_not_found", "an unknown IP (by id or address) gets 404 ip_address_not_found"),
    Promise("422 ip_already_allocated", "an IP held by another resource gets 422 ip_already_allocated",
            "ip_addresses.allocated_elsewhere"),
    Promise("422 invalid_ip", "an IP not valid for the interface's network gets 422 invalid_ip", "ip_addresses.invalid_for_interface"),
    Promise("429 rate_limit_reached", "a burst past the limit gets 429 rate_limit_reached with total_permitted", "rate_limit.provoke"),
    Promise("503 service_unavailable", "in maintenance, requests get 503 service_unavailable (provoked on the mock only)"),
    Promise("mutual exclusivity", "ip_address takes id or address, not both: two values are ambiguous, none is missing"),
    Promise("400 argument errors", "malformed arguments get 400 invalid_argument / missing_required_argument / invalid_json_body"),
    Promise("response shape", "every response's status, content type, headers and body match the spec fragment"),
    Promise("rate-limit headers",
            "200s carry X-RateLimit-Permitted/Remaining; wherever present, Remaining never exceeds Permitted nor rises mid-window"),
    Promise("order of checks", "authentication, then scope, then arguments, then the endpoint's own checks"),
    Promise("no side effects", "a rejected request changes no allocation"),
    Promise("concurrency", "requests sent at the same moment: one free IP asked for twice has one winner (200) and one 422"
            " ip_already_allocated; a burst gets each request the answer it gets alone", "other_network_interface.id"),
    Promise("cleanup", "the suite leaves every IP it touched as it found it"),
)
BY_ID = {promise.id: promise for promise in PROMISES}
CLEANUP = BY_ID["cleanup"]

def declared_promises(item: pytest.Item) -> tuple[str, ...]:
    """The promises a test speaks for, from its promise markers; an unknown id is a usage error."""
    found = tuple(dict.fromkeys(str(name) for marker in item.iter_markers(MARKER) for name in marker.args))
    unknown = [name for name in found if name not in BY_ID]
    if unknown:
        raise pytest.UsageError(f"{item.nodeid} declares unknown promise {unknown[0]!r}; known promises: {', '.join(BY_ID)}")
    return found


@dataclass
class TestOutcome:
    """How one test ended, and which of its promises a failure counts against."""

    __test__ = False  # not a test class, despite the name

    name: str
    promises: tuple[str, ...]
    outcome: str = PASSED
    reason: str = ""
    charged: tuple[str, ...] = ()
    excused_by: str | None = None
    phase: str = "call"

    def outcome_for(self, promise_id: str) -> str:
        """The test's result as far as one promise goes: a failure charged to another of its promises is a pass here."""
        if self.outcome in (FAILED, DEVIATION) and promise_id not in self.charged:
            return PASSED
        return self.outcome


@dataclass
class PromiseVerdict:
    """A promise, its verdict, and the tests behind it as (test name, outcome, reason)."""

    promise: Promise
    verdict: str
    tests: list[tuple[str, str, str]] = field(default_factory=list)

    def names(self, outcome: str) -> list[str]:
        """Names of the tests with this outcome."""
        return [name for name, result, _ in self.tests if result == outcome]

    def reasons(self, outcome: str) -> list[str]:
        """Distinct reasons of the tests with this outcome, in order."""
        return list(dict.fromkeys(reason for _, result, reason in self.tests if result == outcome and reason))


def judge(promise: Promise, outcomes: Iterable[TestOutcome]) -> PromiseVerdict:
    """Fails if any test failed; else known deviation if any was excused; conforms if any passed; not provoked if all skipped."""
    results = [(o, o.outcome_for(promise.id)) for o in outcomes if promise.id in o.promises]
    tests = [(o.name, result, o.reason if result == o.outcome else "") for o, result in results]
    seen = {outcome for _, outcome, _ in tests}
    for outcome, verdict in ((FAILED, FAILS), (DEVIATION, KNOWN_DEVIATION), (PASSED, CONFORMS), (SKIPPED, NOT_PROVOKED)):
        if outcome in seen:
            return PromiseVerdict(promise, verdict, tests)
    return PromiseVerdict(promise, NOT_RUN, tests)
