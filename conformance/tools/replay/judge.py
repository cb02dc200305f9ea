"""Mapping a recorded exchange to an operation of the fragment, and judging it with the live suite's checks."""
from __future__ import annotations

import datetime
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import schemathesis
from schemathesis.core.failures import FailureGroup

from conformance.contract.checks import (
    SCHEMATHESIS_CHECKS,
    SPEC_PATH,
    ConformanceFailure,
    as_schemathesis_response,
    body_violations,
    conforms_to_fragment,
    told,
)
from conformance.contract.findings import Finding, FindingLog, NotReached, RunContext, TestScope, charged_to, reach, require, running
from conformance.contract.ids import (
    CLEANUP,
    CONCURRENCY,
    ERROR_ENVELOPE,
    INTERFACE_FROM_PATH,
    NO_ECHOED_CREDENTIAL,
    NO_SIDE_EFFECTS,
    ORDER_OF_CHECKS,
    OTHER_ORGANIZATION_INTERFACE,
    OTHER_ORGANIZATION_IP,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_REACHED,
    READ_ONLY_TOKEN_REFUSED,
    RESPONSE_SHAPE,
    SEMANTICS_200,
    SERVICE_UNAVAILABLE,
)
from conformance.contract.promises import KNOWN
from conformance.tools.replay.recordings import Recorded
from conformance.wire.exchange import CURL_HTTP_VERSION
from conformance.wire.har import BURST, CALL, PHASE, PROMISES, TEST

DEFAULT_BASE_PATH = "/core/v1"
# Transport encodings describe bytes the recorder already decoded; httpx would try to decode them again.
DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
# What only a live run can judge, and what it needs: more than one exchange, the target's state, or what a record lacks.
LIVE_ONLY = {
    ORDER_OF_CHECKS: "which check comes first, from requests built to break two at once",
    NO_SIDE_EFFECTS: "reading the IPs before and after a refused request",
    CONCURRENCY: "requests sent at the same moment",
    CLEANUP: "the target's state after the run",
    SEMANTICS_200: "reading who holds the IP after the 200",
    RATE_LIMIT_REACHED: "a burst within one rate-limit window",
    RATE_LIMIT_HEADERS: "X-RateLimit-Remaining counting down across exchanges",
    NO_ECHOED_CREDENTIAL: "the real credentials, which a record never holds",
    READ_ONLY_TOKEN_REFUSED: "which token was sent, which a record never holds, and the IP read after the refusal",
    OTHER_ORGANIZATION_IP: "which objects are another organization's, and their holders read before and after",
    OTHER_ORGANIZATION_INTERFACE: "which interface is another organization's, and the IP read after the refusal",
}
# Phases of the suite's own record whose allocate_ip exchanges its tests judged (the rest are its bookkeeping: preflight, reads, cleanup).
JUDGED_PHASES = frozenset({CALL, BURST})
# Coded tests of the suite whose allocate_ip exchanges all expect one answer, and the promise each judges by it (the scenario
# rows say theirs in ROWS): an error code, or a 200 (of which replay judges the exchange; who then holds the IP is live-only).
CODED_EXPECTATIONS: dict[str, tuple[int, str | None, str]] = {
    "test_service_unavailable": (503, "service_unavailable", SERVICE_UNAVAILABLE),
    "test_interface_from_path_segment": (200, None, INTERFACE_FROM_PATH),
}
HTTP_VERSIONS = {"h2": "HTTP/2", "http/2": "HTTP/2", "http/2.0": "HTTP/2", "h3": "HTTP/3", "http/3": "HTTP/3", "http/1.0": "HTTP/1.0"}


@dataclass(frozen=True)
class Operation:
    """An operation of the fragment, and the recorded paths that are it (any value in the route-parameter segment)."""

    name: str
    method: str
    template: str
    pattern: re.Pattern[str]


OPERATIONS = (
    Operation("allocate_ip", "POST", "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip",
              re.compile(r"^/virtual_machine_network_interfaces/[^/]+/allocate_ip/?$")),
    Operation("get_ip_address", "GET", "/ip_addresses/ip_address", re.compile(r"^/ip_addresses/[^/]+/?$")),
    Operation("unallocate", "POST", "/ip_addresses/ip_address/unallocate", re.compile(r"^/ip_addresses/[^/]+/unallocate/?$")),
)


@dataclass(frozen=True)
class JudgedExchange:
    """One mapped (or opted-in) interaction: the operation it is, and the findings it added (none when it conforms)."""

    recorded: Recorded
    operation: str
    findings: tuple[Finding, ...] = ()
    # The promises whose checks ran to the end on this exchange, finding nothing.
    reached: frozenset[str] = frozenset()


def http_version(recorded: Recorded) -> str:
    """The exchange's HTTP version as httpx and curl name it (HTTP/1.1 unless the recording says otherwise)."""
    return HTTP_VERSIONS.get(recorded.http_version.strip().lower(), "HTTP/1.1")


def operation_paths() -> tuple[str, ...]:
    """The first segments of the fragment's operations' paths, which tell where the API base ends in a recorded path."""
    return tuple(dict.fromkeys("/" + op.template.strip("/").split("/")[0] + "/" for op in OPERATIONS))


def base_of(path: str) -> str | None:
    """The base path an exchange of one of the fragment's operations was recorded under (e.g. /katapult/core/v1), or None."""
    for segment in operation_paths():
        at = path.find(segment)
        if at >= 0 and any(op.pattern.match(path[at:]) for op in OPERATIONS):
            return path[:at] or "/"
    return None


def api_path(path: str, base_path: str) -> str:
    """The path under the API base, e.g. /core/v1/ip_addresses/_ -> /ip_addresses/_."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return path[len(base):] if base and (path == base or path.startswith(base + "/")) else path


def operation_for(recorded: Recorded, base_path: str = DEFAULT_BASE_PATH) -> Operation | None:
    """The fragment's operation this exchange is, by method and path (either path form), or None."""
    path = api_path(recorded.path, base_path)
    return next((op for op in OPERATIONS if op.method == recorded.method and op.pattern.match(path)), None)


def as_response(recorded: Recorded) -> httpx.Response:
    """The recording as the httpx.Response the live checks judge, with its request attached; HTTP/2 pseudo-headers (:method,
    :authority, :status...) are the protocol's framing, not headers, and are left out."""
    version = http_version(recorded)
    sent = [(name, value) for name, value in recorded.request_headers if not name.startswith(":")]
    request = httpx.Request(recorded.method, recorded.url, headers=sent, content=recorded.request_body,
                            extensions={CURL_HTTP_VERSION: version})
    headers = [(name, value) for name, value in recorded.headers if name.lower() not in DROPPED_HEADERS and not name.startswith(":")]
    response = httpx.Response(recorded.status, headers=headers, content=recorded.body, request=request,
                              extensions={"http_version": version.encode("ascii")})
    response.elapsed = datetime.timedelta(0)
    return response


@cache
def _operation(template: str, method: str) -> Any:
    return schemathesis.openapi.from_path(str(SPEC_PATH))[template][method]


def conforms_to_operation(response: httpx.Response, operation: Operation) -> None:
    """A support operation's response matches its own responses in the fragment (schemathesis' checks)."""
    schema_operation = _operation(operation.template, operation.method)
    case = schema_operation.Case(media_type="application/json") if operation.method == "POST" else schema_operation.Case()
    try:
        case.validate_response(as_schemathesis_response(response), checks=SCHEMATHESIS_CHECKS)
    except FailureGroup as group:
        failures = list(group.exceptions)
        title = getattr(failures[0], "title", "Response does not conform to the fragment")
        violations = body_violations(response, (operation.template, operation.method.lower()))
        found = "".join(f"\n  - {getattr(f, 'title', type(f).__name__)}\n" + textwrap.indent(told(f, violations), "      ") for f in failures)
        documented = f"{SPEC_PATH.parent.name}/{SPEC_PATH.name}, {operation.method} {operation.template}, responses for {response.status_code}"
        raise ConformanceFailure(title, f"a response schemathesis' checks reject:{found}", documented, response, promise=RESPONSE_SHAPE,
                                 check=title) from None


def has_error_envelope(response: httpx.Response) -> None:
    """An error of any endpoint is {"error": {"code": str, "description": str | null, "detail": object}} with X-Api-Schema: json-error."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    shaped = (isinstance(error, dict) and isinstance(error.get("code"), str) and "description" in error
              and (error["description"] is None or isinstance(error["description"], str)) and isinstance(error.get("detail"), dict))
    documented = '{"error": {"code": str, "description": str | null, "detail": object}}'
    if not shaped:
        got = json.dumps(body)[:200] if body is not None else "(not JSON)"
        raise ConformanceFailure("Error body is not the shared error envelope", got, documented, response, promise=ERROR_ENVELOPE)
    if response.headers.get("x-api-schema") != "json-error":
        got = response.headers.get("x-api-schema", "(absent)")
        raise ConformanceFailure("Error lacks X-Api-Schema: json-error", f"X-Api-Schema: {got}", "X-Api-Schema: json-error on every error",
                                 response, promise=ERROR_ENVELOPE)
    reach(ERROR_ENVELOPE)


def is_suite_record(recorded: Recorded) -> bool:
    """Whether the exchange comes from the suite's own record (`--record`), which marks each with the phase of the run that sent it."""
    return PHASE in recorded.marks


def judged_live(recorded: Recorded, operation: Operation | None) -> bool:
    """Whether the live run judged this exchange of its own record: allocate_ip sent by a test (its preflight, the starting
    state, cleanup and the end-of-run reads are its bookkeeping, judged by no test)."""
    return operation is not None and operation.name == "allocate_ip" and recorded.marks.get(PHASE) in JUDGED_PHASES


def row_for(test: str) -> Any:
    """The scenario row a recorded test id names (`...::test_scenario[missing-token]`), or None."""
    from conformance.cases.scenarios import ROWS

    name = test.rsplit("::", 1)[-1]
    return next((row for row in ROWS if name == f"test_scenario[{row.id}]"), None)


def as_live(recorded: Recorded) -> tuple[str, tuple[str, ...], Callable[[httpx.Response], object]]:
    """How the live run judged an exchange of its own record: the test's name, its promises, and its check (a scenario row's
    expectation, a coded test's expected error, else the wire checks every response goes through)."""
    from conformance.cases.scenarios import judge_row
    from conformance.contract.checks import body_unusable, expect_error
    from conformance.wire.exchange import error_code

    test = str(recorded.marks.get(TEST) or recorded.label)
    promises = tuple(str(promise) for promise in recorded.marks.get(PROMISES) or () if promise in KNOWN)
    name = test.rsplit("::", 1)[-1]
    row = row_for(test)
    if row is not None and row.promise not in LIVE_ONLY:
        def check(response: httpx.Response) -> None:
            require(*row.depends)
            judge_row(row, response)
            reach(row.promise)

        return name, promises, check
    coded = CODED_EXPECTATIONS.get(name.split("[", 1)[0])
    if coded is not None:
        status, code, promise = coded

        def expect(response: httpx.Response) -> None:
            if code is not None:
                expect_error(response, status, code)
            else:
                body_unusable(response, conforms_to_fragment(response, status_expected=True))
                if response.status_code != status:
                    raise ConformanceFailure(f"Expected {status}", f"{response.status_code} {error_code(response) or ''}".strip(),
                                             str(status), response, check="status and code")
            reach(promise)

        return name, promises, expect
    return name, promises, conforms_to_fragment


def judge_exchange(recorded: Recorded, log: FindingLog, *, base_path: str = DEFAULT_BASE_PATH, other_errors: bool = False,
                   run: RunContext | None = None) -> JudgedExchange | None:
    """Judge one answered exchange into `log`, or None when it is another endpoint's (and not an error opted in with other_errors),
    or, in the suite's own record, one the live run did not judge either.

    `run`: the replay's own run, shared by its exchanges (answers already found conforming are not validated again); one of
    its own when not given.
    """
    operation = operation_for(recorded, base_path)
    response = as_response(recorded)
    check: Callable[[httpx.Response], object]
    name = operation.name if operation is not None else "error_envelope"
    promises: tuple[str, ...] = ()
    if is_suite_record(recorded):
        if not judged_live(recorded, operation):
            return None
        _, promises, check = as_live(recorded)
    elif operation is None:
        if not other_errors or recorded.status < 400:
            return None
        check = has_error_envelope
    elif operation.name == "allocate_ip":
        check = conforms_to_fragment
    else:
        def check(response: httpx.Response) -> None:
            conforms_to_operation(response, operation)
            reach(RESPONSE_SHAPE)

    # With no promise of its own (or, from the suite's record, the test's), a check's finding is recorded under the promise it
    # speaks for, and judging goes on; one of the test's own promises ends the exchange's judging, as it ended the test. The
    # checks speak for the replay's run (active for the exchange only), so replay leaves nothing behind.
    run = run or RunContext()
    scope = run.scope = TestScope(recorded.label, promises, log)
    try:
        with running(run):
            check(response)
    except ConformanceFailure as failure:
        if not failure.recorded:
            scope.recorded.append(log.record(failure, charged_to(failure.promise, promises) or RESPONSE_SHAPE, recorded.label))
    except NotReached:
        pass  # what it builds on already deviates: recorded under that promise
    finally:
        run.scope = None
    return JudgedExchange(recorded, name, tuple(scope.recorded), frozenset(scope.reached))
