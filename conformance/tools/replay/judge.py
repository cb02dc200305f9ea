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
from conformance.contract.findings import Finding, FindingLog, RunContext, TestScope, reach
from conformance.contract.ids import ERROR_ENVELOPE, RESPONSE_SHAPE
from conformance.tools.replay.recordings import Recorded

DEFAULT_BASE_PATH = "/core/v1"
# Transport encodings describe bytes the recorder already decoded; httpx would try to decode them again.
DROPPED_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


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


def api_path(path: str, base_path: str) -> str:
    """The path under the API base, e.g. /core/v1/ip_addresses/_ -> /ip_addresses/_."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return path[len(base):] if base and (path == base or path.startswith(base + "/")) else path


def operation_for(recorded: Recorded, base_path: str = DEFAULT_BASE_PATH) -> Operation | None:
    """The fragment's operation this exchange is, by method and path (either path form), or None."""
    path = api_path(recorded.path, base_path)
    return next((op for op in OPERATIONS if op.method == recorded.method and op.pattern.match(path)), None)


def as_response(recorded: Recorded) -> httpx.Response:
    """The recording as the httpx.Response the live checks judge, with its request attached."""
    request = httpx.Request(recorded.method, recorded.url, headers=recorded.request_headers, content=recorded.request_body)
    headers = [(name, value) for name, value in recorded.headers if name.lower() not in DROPPED_HEADERS]
    response = httpx.Response(recorded.status, headers=headers, content=recorded.body, request=request)
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


def has_error_envelope(response: httpx.Response, run: RunContext | None = None) -> None:
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
    reach(ERROR_ENVELOPE, run)


def judge_exchange(recorded: Recorded, log: FindingLog, *, base_path: str = DEFAULT_BASE_PATH, other_errors: bool = False,
                   run: RunContext | None = None) -> JudgedExchange | None:
    """Judge one exchange into `log`, or None when it is another endpoint's (and not an error opted in with other_errors).

    `run`: the replay's own run, shared by its exchanges (answers already found conforming are not validated again); one of
    its own when not given.
    """
    operation = operation_for(recorded, base_path)
    response = as_response(recorded)
    check: Callable[[httpx.Response, RunContext], object]
    if operation is None:
        if not other_errors or recorded.status < 400:
            return None
        name, check = "error_envelope", has_error_envelope
    elif operation.name == "allocate_ip":
        name = operation.name

        def check(response: httpx.Response, run: RunContext) -> None:
            conforms_to_fragment(response, run=run)
    else:
        name = operation.name

        def check(response: httpx.Response, run: RunContext) -> None:
            conforms_to_operation(response, operation)
            reach(RESPONSE_SHAPE, run)

    # No promise of its own: every check's finding is recorded under the promise it speaks for, and judging goes on. The
    # exchange's run is passed to its checks, never made the active one: replay leaves nothing behind.
    run = run or RunContext()
    scope = run.scope = TestScope(recorded.label, (), log)
    try:
        check(response, run)
    except ConformanceFailure as failure:
        scope.recorded.append(log.record(failure, failure.promise or RESPONSE_SHAPE, recorded.label))
    finally:
        run.scope = None
    return JudgedExchange(recorded, name, tuple(scope.recorded))
