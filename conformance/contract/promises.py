"""The documented promises of allocate_ip, which tests speak for each, and each promise's verdict.

A test names its promises with `@pytest.mark.promise("403 scope_not_granted", ...)` and fails only on those. Every
check a response goes through records its deviations as findings under the promise it speaks for (see
conformance.contract.findings); a promise's verdict comes from its findings and from whether its checks ran to the end.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from conformance.contract import ids
from conformance.contract.findings import NOT_REACHED_PREFIX, Finding
from conformance.contract.ids import PromiseId
from conformance.contract.outcomes import Cause, CausedSkip, Outcome, Verdict, verdict_of_causes
from conformance.wire.transport import NETWORK_PREFIX, NOT_RUN_PREFIX

MARKER = "promise"
# The outcomes and verdicts by their old names (their words are the reports'): DEVIATION is an outcome, KNOWN_DEVIATION a verdict.
PASSED, FAILED, SKIPPED, DEVIATION = Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.DEVIATION
CONFORMS, FAILS, KNOWN_DEVIATION = Verdict.CONFORMS, Verdict.FAILS, Verdict.KNOWN_DEVIATION
NOT_PROVOKED, NOT_REACHED, NOT_RUN, OPTED_OUT = Verdict.NOT_PROVOKED, Verdict.NOT_REACHED, Verdict.NOT_RUN, Verdict.OPTED_OUT
NOT_JUDGED_NETWORK = Verdict.NOT_JUDGED_NETWORK
JUDGED = (CONFORMS, FAILS, KNOWN_DEVIATION)


@dataclass(frozen=True)
class Promise:
    """One documented behaviour: its id, what it says, and the fixture key it cannot be provoked without (if any).

    `by_checks`: judged by the response checks every test runs, so only those checks reaching it count, not a test
    that passes. `live_provokable`: whether a live target can provoke it at all (maintenance cannot be switched on).
    `opt_out`: the target fixtures' setting that opts out of it, where a target may be unable to give what it `needs`.
    """

    id: PromiseId
    description: str
    needs: str | None = None
    by_checks: bool = False
    live_provokable: bool = True
    opt_out: str | None = None

    def to_provoke(self) -> str:
        """What a run needs to judge it, and the setting that opts out instead (for a completeness failure's one line)."""
        if self.needs is None:
            return ""
        return f"set {self.needs} in the target fixtures" + (f", or opt out with {self.opt_out}" if self.opt_out else "")


PROMISES = (
    Promise(ids.SHAPE_200, "a successful allocation answers 200 with the interface in the documented shape", "ip_addresses.allocatable",
            by_checks=True),
    Promise(ids.SEMANTICS_200, "the IP asked for (by id or address) is then held by the interface's virtual machine; the 200 lists it"
            " beside the IPs the interface held before", "ip_addresses.allocatable"),
    Promise(ids.MISSING_API_TOKEN, "a request without a Bearer token gets 400 missing_api_token"),
    Promise(ids.INVALID_API_TOKEN, "a token that does not exist gets 403 invalid_api_token"),
    Promise(ids.SCOPE_NOT_GRANTED, "a token without the ip_addresses scope gets 403 scope_not_granted naming it",
            "credentials.without_scope"),
    Promise(ids.UNAUTHORIZED_NETWORK, "a token used from a network it is not allowed from gets 403 naming the caller",
            "credentials.network_restricted"),
    Promise(ids.INVALID_CAPABILITIES_TOKEN, "an invalid capabilities token gets 403 invalid_capabilities_token",
            "credentials.invalid_capabilities"),
    Promise(ids.READ_ONLY_TOKEN_REFUSED, "a token granted only ip_addresses:read gets 403 scope_not_granted naming ip_addresses on allocate_ip,"
            " changes nothing, and may read IPs", "credentials.read_only", opt_out="credentials.read_only: false"),
    Promise(ids.INTERFACE_NOT_FOUND, "an unknown interface gets 404 virtual_machine_network_interface_not_found"),
    Promise(ids.IP_ADDRESS_NOT_FOUND, "an unknown IP (by id or address) gets 404 ip_address_not_found"),
    Promise(ids.OTHER_ORGANIZATION_IP, "another organization's IP, asked for by id or by address, is not found"
            " (404 ip_address_not_found) and nothing changes", "other_organization.ip_address", opt_out="other_organization: false"),
    Promise(ids.OTHER_ORGANIZATION_INTERFACE, "the fixture IP asked for another organization's interface is not found"
            " (404 virtual_machine_network_interface_not_found) and stays as it was", "other_organization.network_interface",
            opt_out="other_organization: false"),
    Promise(ids.IP_ALREADY_ALLOCATED, "an IP held by another resource gets 422 ip_already_allocated",
            "ip_addresses.allocated_elsewhere"),
    Promise(ids.INVALID_IP, "an IP not valid for the interface's network gets 422 invalid_ip", "ip_addresses.invalid_for_interface"),
    Promise(ids.RATE_LIMIT_REACHED, "a burst past the limit gets 429 rate_limit_reached with total_permitted", "rate_limit.provoke",
            opt_out="rate_limit.provoke: false"),
    Promise(ids.SERVICE_UNAVAILABLE, "in maintenance, requests get 503 service_unavailable (provoked on the mock only)",
            live_provokable=False),
    Promise(ids.MUTUAL_EXCLUSIVITY, "ip_address takes id or address, not both: two values are ambiguous, none is missing"),
    Promise(ids.ARGUMENT_ERRORS, "malformed arguments get 400 invalid_argument / missing_required_argument / invalid_json_body"),
    Promise(ids.INTERFACE_FROM_PATH, "a body without virtual_machine_network_interface takes it from the path segment;"
            " an explicit null is 400 missing_required_argument"),
    Promise(ids.QUERY_STRING_ARGUMENTS, "query-string lookup values merge with the JSON body's, the body winning; JSON is read only as"
            " application/json"),
    Promise(ids.RESPONSE_SHAPE, "every response's status, content type and body match the spec fragment", by_checks=True),
    Promise(ids.REQUEST_ID_HEADER, "every response carries a non-empty X-Request-Id (its format is the deployment's)",
            by_checks=True),
    Promise(ids.API_SCHEMA_HEADER, "every error carries X-Api-Schema: json-error, and no success does", by_checks=True),
    Promise(ids.RATE_LIMIT_HEADERS,
            "every response past authentication (200s and its errors) carries X-RateLimit-Permitted/Remaining; Remaining never exceeds"
            " Permitted nor rises mid-window", by_checks=True),
    Promise(ids.NO_SERVER_ERRORS, "no request, valid or not, gets a 5xx other than 503 service_unavailable", by_checks=True),
    Promise(ids.MALFORMED_BYTES,
            "bytes that are not UTF-8 (a whole body, or inside a JSON string) get a documented 4xx that conforms, never a 5xx", by_checks=True),
    Promise(ids.NO_ECHOED_CREDENTIAL, "no response repeats the token the request presented", by_checks=True),
    Promise(ids.ORDER_OF_CHECKS, "authentication, then scope, then arguments, then the endpoint's own checks"),
    Promise(ids.NO_SIDE_EFFECTS, "a rejected request changes no allocation"),
    Promise(ids.CONCURRENCY, "requests sent at the same moment: one free IP asked for twice has one winner (200) and one 422"
            " ip_already_allocated; a burst gets each request the answer it gets alone", "other_network_interface.id"),
    Promise(ids.CLEANUP, "the suite leaves every IP it touched as it found it"),
)
# Keyed by plain strings too: markers, baselines and reports hold the ids as text.
BY_ID: dict[str, Promise] = {promise.id: promise for promise in PROMISES}
CLEANUP = BY_ID[ids.CLEANUP]
# Judged only by `replay`, on other endpoints' errors; listed here so every promise id the code names is checked against one catalogue.
REPLAY_ONLY = (Promise(ids.ERROR_ENVELOPE, "an error of any endpoint is the shared {error: {code, description, detail}} with"
                       " X-Api-Schema: json-error"),)
KNOWN: dict[str, Promise] = {promise.id: promise for promise in (*PROMISES, *REPLAY_ONLY)}


class UnknownPromise(ValueError):
    """The code names a promise the catalogue does not have (a misspelt id): an internal error, never a silent pass."""


def promise_id(name: str) -> str:
    """The id, checked against the catalogue where the code names it, so a typo fails at once instead of charging a finding nowhere."""
    if name not in KNOWN:
        raise UnknownPromise(f"unknown promise {name!r}: the catalogue in conformance/contract/promises.py has {', '.join(KNOWN)}")
    return name

def declared_promises(item: pytest.Item) -> tuple[str, ...]:
    """The promises a test speaks for, from its promise markers; an unknown id is a usage error."""
    found = tuple(dict.fromkeys(str(name) for marker in item.iter_markers(MARKER) for name in marker.args))
    unknown = [name for name in found if name not in BY_ID]
    if unknown:
        raise pytest.UsageError(f"{item.nodeid} declares unknown promise {unknown[0]!r}; known promises: {', '.join(BY_ID)}")
    return found


class OptedOut(CausedSkip):
    """The target fixtures say not to run this test (e.g. `rate_limit.provoke: false`): a choice, not a gap in coverage."""

    cause = Cause.OPTED_OUT

    def __init__(self, setting: str) -> None:
        super().__init__(f"opted out in the target fixtures ({setting})")
        self.setting = setting


@dataclass
class TestOutcome:
    """How one test ended: the promises it exists for, the one its failure is charged to, and those its checks reached."""

    __test__ = False  # not a test class, despite the name

    name: str
    promises: tuple[str, ...]
    outcome: Outcome = Outcome.PASSED
    reason: str = ""
    charged: tuple[str, ...] = ()
    excused_by: str | None = None
    phase: str = "call"
    reached: tuple[str, ...] = ()
    # The target fixtures' setting that opted this test out (skipped by OptedOut), if any.
    opted_out: str | None = None
    # Why a skipped test did not judge its promises, when the suite knows (a CausedSkip's cause); None for any other skip.
    cause: Cause | None = None

    def reaches(self, promise: Promise) -> bool:
        """Whether this test judged the promise to the end: a passed test its own (non-check) promises, any test what its checks reached."""
        if promise.id in self.reached:
            return True
        return self.outcome == PASSED and promise.id in self.promises and not promise.by_checks


@dataclass
class PromiseVerdict:
    """A promise, its verdict, why, the tests behind it as (test name, outcome, reason), and its findings."""

    promise: Promise
    verdict: Verdict
    reason: str = ""
    tests: list[tuple[str, Outcome, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def judged(self) -> bool:
        """Whether the run judged this promise (conforms, fails or known deviation)."""
        return self.verdict.judged

    def names(self, outcome: str) -> list[str]:
        """Names of the tests with this outcome."""
        return [name for name, result, _ in self.tests if result == outcome]


def verdict_of(promise: Promise, outcomes: Iterable[TestOutcome], findings: Iterable[Finding], reached: int) -> PromiseVerdict:
    """fails on an unexcused finding; known deviation when all are excused; conforms when its checks ran to the end at least once;
    else opted out (every test of it opted out by the target fixtures) / not provoked / not run / not judged (network) / not reached,
    saying why."""
    outcomes = list(outcomes)
    own = [finding for finding in findings if finding.signature.promise == promise.id]
    declaring = [o for o in outcomes if promise.id in o.promises]
    tests = [(o.name, o.outcome, o.reason) for o in declaring]
    if any(finding.excused_by is None for finding in own):
        return PromiseVerdict(promise, FAILS, f"{sum(f.count for f in own if f.excused_by is None)} deviation(s)", tests, own)
    if own:
        return PromiseVerdict(promise, KNOWN_DEVIATION, "; ".join(dict.fromkeys(str(f.excused_by) for f in own)), tests, own)
    judged_by = sum(1 for o in declaring if o.reaches(promise))
    if reached or judged_by or any(o.reaches(promise) for o in outcomes):
        said = f"{judged_by} test(s) judged it" if judged_by else "checked by other tests (none of its own ran)"
        return PromiseVerdict(promise, CONFORMS, f"{said}, no finding", tests)
    if declaring:
        verdict = verdict_of_causes([o.cause if o.outcome == SKIPPED else None for o in declaring])
        return PromiseVerdict(promise, verdict, why_not(verdict, declaring), tests)
    if promise.by_checks:
        return PromiseVerdict(promise, NOT_REACHED, "no response in this run went through its checks", tests)
    return PromiseVerdict(promise, NOT_RUN, "no test for it ran (deselected, or the run stopped early)", tests)


def why_not(verdict: Verdict, declaring: list[TestOutcome]) -> str:
    """Why a promise its tests did not judge got this verdict, in the words of the first test that says (decided already, by cause)."""
    if verdict == OPTED_OUT:
        return f"not run, as the target fixtures say ({', '.join(dict.fromkeys(o.opted_out or '' for o in declaring if o.opted_out))})"
    if verdict == NOT_PROVOKED:
        return next(o.reason for o in declaring if o.cause == Cause.NOT_PROVOKED)
    if verdict == NOT_RUN:
        return declaring[0].reason.removeprefix(NOT_RUN_PREFIX)
    if verdict == NOT_JUDGED_NETWORK:
        return declaring[0].reason.removeprefix(NETWORK_PREFIX)
    stops = [o.reason.removeprefix(NOT_REACHED_PREFIX) for o in declaring if o.outcome != PASSED and o.reason]
    return stops[0] if stops else "its tests ended before its checks ran"
