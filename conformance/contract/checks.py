"""Checks: small functions that judge one response and raise a ConformanceFailure with a stable title."""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import textwrap
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import httpx
import jsonschema_rs
import schemathesis
import yaml
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response as SchemathesisResponse
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conformance.contract.findings import Deviation, NotReached, RunContext, charge_elsewhere, current_run, reach, report
from conformance.contract.ids import (
    API_SCHEMA_HEADER,
    ARGUMENT_ERRORS,
    MALFORMED_BYTES,
    NO_ECHOED_CREDENTIAL,
    NO_SERVER_ERRORS,
    NO_SIDE_EFFECTS,
    RATE_LIMIT_HEADERS,
    REQUEST_ID_HEADER,
    RESPONSE_SHAPE,
    SHAPE_200,
    PromiseId,
)
from conformance.contract.promises import PROMISES, promise_id
from conformance.setup.fixtures import IPRef
from conformance.setup.paths import data_path
from conformance.wire.exchange import Change, describe_exchange, error_code, error_detail
from conformance.wire.paths import ALLOCATE_PATH

SPEC_PATH = data_path("spec", "allocate_ip.yaml")
# The real endpoint documents 503 service_unavailable, so a 503 is judged by its schema, not as a crash.
DOCUMENTED_SERVER_ERRORS = frozenset({503})
# Shorter tokens could turn up in a body by chance; real API tokens are far longer.
MIN_ECHOED_TOKEN = 16
# Headers are judged by wire_headers instead, each under the promise it speaks for.
SCHEMATHESIS_CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


class ConformanceFailure(Deviation):
    """A response broke a documented promise: a headline of expected against received, the promise and check, the exchange."""

    def __init__(self, title: str, received: str, documented: str, response: httpx.Response | None = None, *,
                 promise: str | None = None, check: str | None = None, change: Change | None = None) -> None:
        # Which promise this breaks (checked against the catalogue now); None means the promise the running test exists for.
        # `change`: the allocation the request changed, which its reproduce lines say and put back.
        super().__init__(title, received, documented, promise=promise_id(promise) if promise is not None else None, check=check,
                         status=response.status_code if response is not None else None,
                         code=error_code(response) if response is not None else None,
                         exchange=describe_exchange(response, change) if response is not None else "")

    def moved(self, response: httpx.Response, change: Change) -> ConformanceFailure:
        """The same failure, its reproduce lines saying the request moved an IP a test watched and putting it back (the test, not the
        check, knows): a new failure, to raise in this one's place."""
        return self.replaced(exchange=describe_exchange(response, change))


@cache
def allocate_operation() -> Any:
    """The operation under test, loaded once from the fragment."""
    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    return schema[ALLOCATE_PATH]["POST"]


@cache
def response_case() -> Any:
    """The Case schemathesis' response checks need; they judge the operation and the response, not the request."""
    return allocate_operation().Case(media_type="application/json")


@cache
def _operation_request() -> Any:
    """One prepared request for the operation, shared by every converted response."""
    import requests

    return requests.Request("POST", f"http://target.invalid{ALLOCATE_PATH}").prepare()


# Bodies past this size are validated each time: the set stays small, and a big body is rare enough not to repeat.
REMEMBERED_BODY_BYTES = 4096


def forget_schemathesis_objects() -> None:
    """Load the operation afresh for a new session: pytest's in-process runs (pytester) unload the schemathesis modules a session
    imported, and an operation kept from an earlier session would hand the next one objects of classes it no longer knows."""
    for cached in (allocate_operation, response_case, _operation_request):
        cached.cache_clear()


def as_schemathesis_response(response: httpx.Response) -> Any:
    """The response in schemathesis' own type.

    schemathesis' converter rebuilds each request as a requests.PreparedRequest, which costs more than the checks
    themselves; the response checks used here read only the status, headers and body, so one shared request serves.
    """
    return SchemathesisResponse(
        status_code=response.status_code,
        headers={key: response.headers.get_list(key) for key in response.headers},
        content=response.content,
        request=_operation_request(),
        elapsed=response.elapsed.total_seconds(),
        message=response.reason_phrase,
        encoding=response.encoding,
        http_version=response.http_version,
        verify=True,
    )


@cache
def fragment() -> dict[str, Any]:
    """The fragment as a document (for what schemathesis' checks do not cover)."""
    # libyaml's loader when PyYAML has it (wheels do): the pure-Python one takes 36 ms for the fragment, 4 ms this way.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loaded = yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=loader)
    assert isinstance(loaded, dict)
    return loaded


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref in the fragment."""
    while "$ref" in node:
        target: Any = fragment()
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@cache
def codes_after_authentication() -> frozenset[str]:
    """Error codes answered after the rate limiter ran (`x-conformance-after-authentication` in the fragment)."""
    schemas = fragment()["components"]["schemas"].values()
    return frozenset(
        schema["properties"]["error"]["properties"]["code"]["const"] for schema in schemas if schema.get("x-conformance-after-authentication")
    )


@cache
def documented_headers(status: int) -> tuple[tuple[str, bool, Any], ...]:
    """(name, required, validator) of each header the fragment declares for allocate_ip's response with this status."""
    responses = fragment()["paths"][ALLOCATE_PATH]["post"]["responses"]
    declared = resolved(responses.get(str(status), {})).get("headers", {})
    return tuple((name, bool(resolved(header).get("required")), jsonschema_rs.validator_for(resolved(header).get("schema", {})))
                 for name, header in declared.items())


def header_promise(name: str) -> str:
    """The promise a header speaks for."""
    if name.lower() == "x-request-id":
        return REQUEST_ID_HEADER
    if name.lower() == "x-api-schema":
        return API_SCHEMA_HEADER
    return RATE_LIMIT_HEADERS if name.lower().startswith("x-ratelimit-") else RESPONSE_SHAPE


def sent_malformed_bytes(request: httpx.Request) -> bool:
    """Whether the request body is not UTF-8 (the framework itself has answered 500 to such bytes)."""
    try:
        request.content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def not_a_server_error(response: httpx.Response) -> list[str]:
    """5xx other than the documented 503 means the server crashed; on bytes that are not UTF-8, under a promise of its own."""
    promise = MALFORMED_BYTES if sent_malformed_bytes(response.request) else NO_SERVER_ERRORS
    if response.status_code >= 500 and response.status_code not in DOCUMENTED_SERVER_ERRORS:
        expected = "a documented 4xx (never 5xx except 503)" if promise == MALFORMED_BYTES else "never 5xx except 503 service_unavailable"
        title = "Server error on malformed bytes" if promise == MALFORMED_BYTES else "Server error"
        raise ConformanceFailure(title, f"{response.status_code} {error_code(response) or ''}".strip(), expected, response,
                                 promise=promise, check="no 5xx")
    return [promise]


def wire_headers(response: httpx.Response) -> list[str]:
    """The headers the fragment declares for this status, each judged under its own promise; X-Api-Schema on no success."""
    for name, required, validator in documented_headers(response.status_code):
        value = response.headers.get(name)
        if value is None and required:
            raise ConformanceFailure(f"{name} missing", f"no {name} header on a {response.status_code}", f"{name} on every {response.status_code}",
                                     response, promise=header_promise(name), check=f"header {name}")
        if value is not None and not validator.is_valid(value):
            schema = next(iter(validator.iter_errors(value))).message.split("\n")[0]
            raise ConformanceFailure(f"{name} does not conform", f"{name}: {value!r} ({schema})", f"{name} as the fragment declares it",
                                     response, promise=header_promise(name), check=f"header {name}")
    value = response.headers.get("X-Api-Schema")
    if response.status_code < 400 and value is not None:
        raise ConformanceFailure("Success with X-Api-Schema", f"X-Api-Schema: {value} on a {response.status_code}",
                                 "no X-Api-Schema header on a success", response, promise=API_SCHEMA_HEADER, check="header X-Api-Schema")
    return [REQUEST_ID_HEADER, API_SCHEMA_HEADER]


def rate_limit_headers_after_authentication(response: httpx.Response, run: RunContext | None = None) -> list[str]:
    """Errors answered after the rate limiter ran carry X-RateLimit-Permitted/Remaining (errors before it may not)."""
    if response.status_code == 200:
        return [RATE_LIMIT_HEADERS]
    code = error_code(response)
    if code not in codes_after_authentication():
        return []
    authenticated = (run or current_run()).authenticated
    if authenticated and response.request.headers.get("Authorization") not in authenticated:
        # An argument error to an unauthenticated request is an order-of-checks deviation; its headers follow from that.
        return []
    missing = [name for name in ("X-RateLimit-Permitted", "X-RateLimit-Remaining") if name not in response.headers]
    required = {name for name, needed, _ in documented_headers(response.status_code) if needed}
    if missing and not required & set(missing):
        # Where the fragment requires them for the whole status, wire_headers has already said so.
        raise ConformanceFailure(f"{response.status_code} {code} without rate-limit headers", f"no {' or '.join(missing)}",
                                 "X-RateLimit-Permitted and X-RateLimit-Remaining on every response past authentication",
                                 response, promise=RATE_LIMIT_HEADERS, check="rate-limit headers past authentication")
    return [RATE_LIMIT_HEADERS]


def no_echoed_credential(response: httpx.Response) -> list[str]:
    """The response never repeats the token the request presented (the real descriptions are fixed texts)."""
    sent = response.request.headers.get("Authorization", "").strip()
    token = sent.split(" ", 1)[-1].strip()
    if len(token) >= MIN_ECHOED_TOKEN and token.encode() in response.content:
        raise ConformanceFailure("Response echoes the credential", "the request's token appears in the response body",
                                 "no credential in any response", response, promise=NO_ECHOED_CREDENTIAL, check="no echoed token")
    return [NO_ECHOED_CREDENTIAL] if len(token) >= MIN_ECHOED_TOKEN else []


@cache
def code_statuses() -> dict[str, tuple[int, PromiseId]]:
    """Each error code with a promise of its own ("403 invalid_api_token"): its documented status and that promise."""
    found = {}
    for promise in PROMISES:
        status, _, code = promise.id.partition(" ")
        if status.isdigit() and code and " " not in code:
            found[code] = (int(status), promise.id)
    for code in ("invalid_argument", "missing_required_argument", "invalid_json_body"):
        found[code] = (400, ARGUMENT_ERRORS)
    return found


def status_of_code(response: httpx.Response) -> ConformanceFailure | None:
    """A known error code under another status than its own: a finding of that code's promise (401 missing_api_token is 400's)."""
    code = error_code(response)
    documented = code_statuses().get(code or "")
    if documented is None or documented[0] == response.status_code:
        return None
    status, promise = documented
    return ConformanceFailure(f"Expected {status} {code}", f"{response.status_code} {code}", f"{status} {code}", response,
                              promise=promise, check="status and code")


def fragment_shape(response: httpx.Response, *, status_expected: bool = False, run: RunContext | None = None) -> list[str]:
    """Status documented, JSON content type and a body valid for that status (schemathesis' checks)."""
    promise = SHAPE_200 if response.status_code == 200 else RESPONSE_SHAPE
    misfiled = status_of_code(response)
    if misfiled is not None and not status_expected:
        raise misfiled
    if misfiled is not None:
        # Judged against another status's schemas the body means nothing; the misfiled status is the finding.
        checks = [content_type_conformance]
    else:
        checks = [check for check in SCHEMATHESIS_CHECKS if not (status_expected and check is status_code_conformance)]
    answer = (response.status_code, response.headers.get("Content-Type"), response.content, tuple(check.__name__ for check in checks))
    conforming = (run or current_run()).conforming
    if answer in conforming:
        return [promise]
    try:
        response_case().validate_response(as_schemathesis_response(response), checks=checks)
    except FailureGroup as group:
        raise shape_failure(response, list(group.exceptions), promise) from None
    if len(response.content) <= REMEMBERED_BODY_BYTES:
        conforming.add(answer)
    return [promise]


def shape_failure(response: httpx.Response, failures: list[Any], promise: str) -> ConformanceFailure:
    """schemathesis' verdict as one finding: a body that breaks its schema is told by path and rule, never as a schema dump.

    A documented error whose only faults are in its `detail` breaks that error's own promise, not the response shape.
    """
    check = str(getattr(failures[0], "title", None) or "Response does not conform to the fragment")
    documented = f"{SPEC_PATH.parent.name}/{SPEC_PATH.name}: POST allocate_ip, {response.status_code} response"
    others = [textwrap.shorten(str(getattr(f, "message", f)).strip(), 300) for f in failures if not isinstance(f, JsonSchemaError)]
    violations = body_violations(response) if len(others) < len(failures) else []
    if not violations:
        return ConformanceFailure(check, "; ".join(others) or check, documented, response, promise=promise, check=check)
    schemas = {violation.schema for violation in violations}
    if len(schemas) == 1 and None not in schemas:
        documented += f" (#/components/schemas/{schemas.pop()})"
    if not others:
        promise = detail_promise(response, violations) or promise
    more = f" (+{len(violations) - SHOWN_VIOLATIONS} more)" if len(violations) > SHOWN_VIOLATIONS else ""
    found = "; ".join([*others, *(violation.text for violation in violations[:SHOWN_VIOLATIONS])]) + more
    # The title is the first fault, so every one-line view (verdict, JUnit message, short summary) names its path.
    title = others[0] if others else violations[0].text + (f" (+{len(violations) - 1} more)" if len(violations) > 1 else "")
    return ConformanceFailure(title, found, documented, response, promise=promise, check=check)


SHOWN_VIOLATIONS = 3


@dataclasses.dataclass(frozen=True)
class Violation:
    """One way a body breaks its schema: where (a JSON path from the body's root), the rule it breaks, and the schema it was held to."""

    path: tuple[str | int, ...]
    rule: str
    schema: str | None = None

    @property
    def text(self) -> str:
        """E.g. "error.detail.scopes is missing"."""
        return f"{json_path(self.path)} {self.rule}"


def json_path(path: Sequence[str | int]) -> str:
    """`error.detail.scopes`, `virtual_machine_network_interface.ip_addresses[0].address`; the root is "the body"."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return text or "the body"


JSON_TYPES = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer", "number": "a number",
              "boolean": "a boolean", "null": "null"}


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, with its article ("a string", "an integer")."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else JSON_TYPES["boolean"]
    kinds = ((dict, "object"), (list, "array"), (str, "string"), (int, "integer"), (float, "number"))
    return next(JSON_TYPES[name] for kind, name in kinds if isinstance(value, kind))


def shown(value: Any) -> str:
    """A value as JSON, cut short."""
    return textwrap.shorten(json.dumps(value), 60)


def response_schema(status: int, operation: tuple[str, str] = (ALLOCATE_PATH, "post")) -> dict[str, Any] | None:
    """The fragment's JSON schema for an operation's (path, method) response with this status (None when it documents none)."""
    path, method = operation
    documented = resolved(fragment()["paths"][path][method]["responses"].get(str(status), {}))
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    return schema if isinstance(schema, dict) else None


@cache
def schema_validator(status: int, operation: tuple[str, str] = (ALLOCATE_PATH, "post")) -> Any:
    """A validator for one status's body schema, its $refs resolved in the fragment."""
    return jsonschema_rs.validator_for({**(response_schema(status, operation) or {}), "components": fragment()["components"]})


def body_violations(response: httpx.Response, operation: tuple[str, str] = (ALLOCATE_PATH, "post")) -> list[Violation]:
    """Each place the body breaks its status's schema (allocate_ip's, or another operation's of the fragment), as path and rule;
    empty when the body is not JSON or no schema applies."""
    if response_schema(response.status_code, operation) is None:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    return [violation for error in schema_validator(response.status_code, operation).iter_errors(body) for violation in violations_of(error)]


def told(failure: Any, violations: list[Violation]) -> str:
    """A schemathesis failure in words: a schema violation by path and rule (never its schema dump), anything else its own message."""
    if isinstance(failure, JsonSchemaError) and violations:
        return "\n".join(violation.text for violation in violations)
    return str(getattr(failure, "message", failure)).strip()


def violations_of(error: Any) -> list[Violation]:
    """One validation error as violations: a oneOf is told by the branch the body meant (the one whose type and constants match)."""
    kind = error.kind
    path = tuple(error.instance_path)
    schema = component(error.schema_path)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.OneOfNotValid):
        return one_of_violations(path, [list(branch) for branch in kind.context], error.instance)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return [Violation((*path, kind.property), "is missing", schema)]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        expected = " or ".join(JSON_TYPES.get(name, name) for name in kind.types)
        return [Violation(path, f"is not {expected} (it is {json_type(error.instance)})", schema)]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Constant):
        return [Violation(path, f"is {shown(error.instance)}, not {shown(kind.expected_value)}", schema)]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        return [Violation(path, f"is {shown(error.instance)}, not one of {', '.join(shown(option) for option in kind.options)}", schema)]
    rule = str(error.schema_path[-1]) if error.schema_path else "schema"
    return [Violation(path, f"breaks {rule}: {textwrap.shorten(error.message.splitlines()[0], 120)}", schema)]


def mismatched(path: tuple[str | int, ...], branch: list[Any]) -> bool:
    """Whether a oneOf branch is not the one the value meant: a constant differs, or the value is not the branch's type."""
    return any(isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Constant)
               or (isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Type) and tuple(error.instance_path) == path)
               for error in branch)


def one_of_violations(path: tuple[str | int, ...], branches: list[list[Any]], value: Any) -> list[Violation]:
    """A value no branch of a oneOf accepts: the branch it meant, or, when it meant none, the types or constants it could have been."""
    meant = [branch for branch in branches if not mismatched(path, branch)]
    if len(meant) == 1:
        return [violation for error in meant[0] for violation in violations_of(error)]
    if meant:
        # Several branches fit as well (e.g. the error envelope is missing): told by the closest, naming none of them.
        return [dataclasses.replace(violation, schema=None) for error in min(meant, key=len) for violation in violations_of(error)]
    errors = [error for branch in branches for error in branch]
    if all(len(branch) == 1 and isinstance(branch[0].kind, jsonschema_rs.ValidationErrorKind.Type) for branch in branches):
        types = dict.fromkeys(JSON_TYPES.get(name, name) for error in errors for name in error.kind.types)
        return [Violation(path, f"is not {' or '.join(types)} (it is {json_type(value)})")]
    constants = [error for error in errors if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Constant)]
    where = {tuple(error.instance_path) for error in constants}
    if len(where) == 1 and len(constants) == len(branches):
        options = ", ".join(dict.fromkeys(shown(error.kind.expected_value) for error in constants))
        return [Violation(where.pop(), f"is {shown(constants[0].instance)}, not one of the documented {options}")]
    return [violation for error in min(branches, key=len) for violation in violations_of(error)]


def component(schema_path: Sequence[str | int]) -> str | None:
    """The named schema a validation error comes from (`ScopeNotGrantedError`), if any."""
    parts = list(schema_path)
    return str(parts[parts.index("schemas") + 1]) if "schemas" in parts[:-1] else None


def detail_promise(response: httpx.Response, violations: list[Violation]) -> str | None:
    """The error's own promise, when every violation is inside the `detail` of an error code documented under this status.

    A `detail` that is not an object at all (null, a string) is a fault of the envelope every error shares, not of one code: it
    stays the response shape's, charged once however many codes show it (as an unwrapped error is).
    """
    documented = code_statuses().get(error_code(response) or "")
    if documented is None or documented[0] != response.status_code:
        return None
    inside = all(len(violation.path) > len(DETAIL_PATH) and violation.path[:len(DETAIL_PATH)] == DETAIL_PATH for violation in violations)
    return documented[1] if inside else None


DETAIL_PATH = ("error", "detail")


WIRE_CHECKS = (not_a_server_error, no_echoed_credential, wire_headers)


def conforms_to_fragment(response: httpx.Response, *, status_expected: bool = False, run: RunContext | None = None) -> set[str]:
    """Every wire check, each deviation reported under its own promise in the run (the active one unless given); returns the
    promises this response failed.

    `status_expected`: the caller judges the status itself (a scenario's expectation), so an unexpected status is
    its finding, not also an undocumented-status finding of the response shape.
    """
    run = run or current_run()
    failed: set[str] = set()
    checks: tuple[Callable[[httpx.Response], list[str]], ...] = (
        *WIRE_CHECKS, lambda r: rate_limit_headers_after_authentication(r, run),
        lambda r: fragment_shape(r, status_expected=status_expected, run=run))
    for check in checks:
        try:
            passed = check(response)
        except ConformanceFailure as failure:
            failed.add(str(failure.promise))
            report(failure, run)
            continue
        for promise in passed:
            reach(promise, run)
    return failed


def body_unusable(response: httpx.Response, failed: set[str]) -> None:
    """Stop, as not reached, when this response's body broke the shape: what depends on its content cannot be judged."""
    if failed & {SHAPE_200, RESPONSE_SHAPE}:
        raise NotReached(f"the {response.status_code} body does not conform to the fragment (see the response shape findings)")


def expect_error(response: httpx.Response, status: int, code: str, run: RunContext | None = None) -> set[str]:
    """The response is the documented error `status code`, in the wire's shape; returns the promises the response failed."""
    failed = conforms_to_fragment(response, status_expected=True, run=run)
    got_code = error_code(response)
    if response.status_code >= 500 and response.status_code not in DOCUMENTED_SERVER_ERRORS:
        raise NotReached(f"the server answered {response.status_code} (a finding of {NO_SERVER_ERRORS} or {MALFORMED_BYTES})")
    if response.status_code == status and got_code is None:
        body_unusable(response, failed)
    if got_code == code and response.status_code != status:
        misfiled = status_of_code(response)
        if misfiled is not None:
            # The right answer under the wrong status is the code's own deviation, wherever it is seen.
            charge_elsewhere(misfiled, run)
    if response.status_code != status or got_code != code:
        raise ConformanceFailure(
            f"Expected {status} {code}", f"{response.status_code} {got_code or '(no error code)'}", f"{status} {code}", response,
            check="status and code")
    return failed


def expect_issue(response: httpx.Response, issue: str, run: RunContext | None = None) -> set[str]:
    """A 400 invalid_argument whose detail.issue is the expected one; returns the promises the response failed."""
    failed = expect_error(response, 400, "invalid_argument", run)
    got = error_detail(response).get("issue")
    if got != issue:
        raise ConformanceFailure(f"Expected invalid_argument issue {issue}", f"invalid_argument issue {got}", f"invalid_argument issue {issue}",
                                 response, check="invalid_argument issue")
    return failed


def is_ip_address(value: Any) -> bool:
    """Whether the value is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def side_effect(ip: IPRef, now: str | None, before: str | None, response: httpx.Response, put_back: str = "") -> ConformanceFailure:
    """A rejected request changed who holds an IP: the finding of "no side effects"; its reproduce line says so, and `put_back` undoes it."""
    return ConformanceFailure("Rejected request changed an allocation", f"{ip.id} ({ip.address}) now held by {now or 'nobody'}",
                              f"unchanged: held by {before or 'nobody'}", response, promise=NO_SIDE_EFFECTS, check="allocations unchanged",
                              change=Change(f"though refused, it moves {moved(ip, before, now)}", put_back))


def moved(ip: IPRef, before: str | None, now: str | None) -> str:
    """An IP's move, as a reproduce line tells it."""
    return f"{ip.id} ({ip.address}) from {before or 'nobody'} to {now or 'nobody'}"


# Answers given only past the scope check: a token that gets one holds the operation's scope (or the server ignores scopes).
SERVED_PAST_SCOPE = frozenset({"invalid_argument", "missing_required_argument", "invalid_json_body", "virtual_machine_network_interface_not_found",
                               "ip_address_not_found", "ip_already_allocated", "invalid_ip"})


def served_past_scope(response: httpx.Response) -> bool:
    """Whether the answer comes after the scope check: a success, or an argument or lookup error."""
    return 200 <= response.status_code < 300 or error_code(response) in SERVED_PAST_SCOPE
