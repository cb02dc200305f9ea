"""Checks: small functions that judge one response and raise a ConformanceFailure with a stable title."""
from __future__ import annotations

import ipaddress
import shlex
import textwrap
from functools import cache
from typing import Any

import httpx
import schemathesis
import yaml
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response as SchemathesisResponse
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conformance.redact import REDACT
from conformance.resources import data_path
from conformance.target import ALLOCATE_PATH

SPEC_PATH = data_path("spec", "allocate_ip.yaml")
BODY_PREVIEW = 600
# The real endpoint documents 503 service_unavailable, so a 503 is judged by its schema, not as a crash.
DOCUMENTED_SERVER_ERRORS = frozenset({503})
# Shorter tokens could turn up in a body by chance; real API tokens are far longer.
MIN_ECHOED_TOKEN = 16
NO_SERVER_ERRORS, MALFORMED_BYTES = "no server errors", "malformed bytes never crash the server"
API_SCHEMA_HEADER, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER = "X-Api-Schema on errors", "rate-limit headers", "X-Request-Id on every response"
SCHEMATHESIS_CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance]


class ConformanceFailure(AssertionError):
    """A response broke a documented promise: title, what came back, what is documented, the exchange."""

    def __init__(self, title: str, received: str, documented: str, response: httpx.Response | None = None, *, promise: str | None = None) -> None:
        self.title = title
        # Which of the test's promises this breaks, when the test speaks for several (see conformance.promises).
        self.promise = promise
        text = f"{title}\n\nReceived: {received}\nDocumented: {documented}"
        if response is not None:
            text += "\n\n" + describe_exchange(response)
        super().__init__(REDACT(text))


@cache
def allocate_operation() -> Any:
    """The operation under test, loaded once from the fragment."""
    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    return schema[ALLOCATE_PATH]["POST"]


def _preview(content: bytes) -> str:
    text = content.decode("utf-8", "replace")
    return text if len(text) <= BODY_PREVIEW else text[:BODY_PREVIEW] + f"... ({len(text)} characters)"


def curl_line(request: httpx.Request) -> str:
    """A copy-pasteable curl command for the request, credentials redacted."""
    parts = ["curl", "-X", request.method]
    for name, value in request.headers.items():
        if name.lower() in ("host", "content-length", "accept-encoding", "connection", "user-agent", "accept"):
            continue
        shown = "Bearer [redacted]" if name.lower() == "authorization" and value.lower().startswith("bearer ") else value
        parts += ["-H", f"{name}: {shown}"]
    if request.content:
        parts += ["--data-raw", request.content.decode("utf-8", "replace")]
    parts.append(str(request.url))
    return REDACT(" ".join(shlex.quote(part) for part in parts))


def describe_exchange(response: httpx.Response) -> str:
    """What was sent and what came back, with every credential replaced by [redacted]."""
    request = response.request
    lines = [
        f"Sent: {request.method} {request.url.path}",
        f"  body: {_preview(request.content) if request.content else '(none)'}",
        f"Got: {response.status_code} {response.headers.get('content-type', '(no content type)')}",
        f"  body: {_preview(response.content)}",
        f"Reproduce: {curl_line(request)}",
    ]
    return REDACT("\n".join(lines))


@cache
def response_case() -> Any:
    """The Case schemathesis' response checks need; they judge the operation and the response, not the request."""
    return allocate_operation().Case(media_type="application/json")


@cache
def _operation_request() -> Any:
    """One prepared request for the operation, shared by every converted response."""
    import requests

    return requests.Request("POST", f"http://target.invalid{ALLOCATE_PATH}").prepare()


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
def codes_after_authentication() -> frozenset[str]:
    """Error codes answered after the rate limiter ran (`x-conformance-after-authentication` in the fragment)."""
    document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"].values()
    return frozenset(
        schema["properties"]["error"]["properties"]["code"]["const"] for schema in schemas if schema.get("x-conformance-after-authentication")
    )


def sent_malformed_bytes(request: httpx.Request) -> bool:
    """Whether the request body is not UTF-8 (the framework itself has answered 500 to such bytes)."""
    try:
        request.content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def not_a_server_error(response: httpx.Response) -> None:
    """5xx other than the documented 503 means the server crashed; on bytes that are not UTF-8, under a promise of its own."""
    if response.status_code >= 500 and response.status_code not in DOCUMENTED_SERVER_ERRORS:
        if sent_malformed_bytes(response.request):
            raise ConformanceFailure("Server error on malformed bytes", f"{response.status_code} {error_code(response) or ''}".strip(),
                                     "400 invalid_json_body (never 5xx except 503)", response, promise=MALFORMED_BYTES)
        raise ConformanceFailure("Server error", f"{response.status_code} {error_code(response) or ''}".strip(),
                                 "never 5xx except 503 service_unavailable", response, promise=NO_SERVER_ERRORS)


def api_schema_header(response: httpx.Response) -> None:
    """`X-Api-Schema: json-error` is on every error and on no success (2,420 of 2,420 errors recorded, 0 of 33,954 successes)."""
    value = response.headers.get("X-Api-Schema")
    if response.status_code >= 400 and value != "json-error":
        raise ConformanceFailure("Error without X-Api-Schema: json-error", f"X-Api-Schema: {value}" if value else "no X-Api-Schema header",
                                 "X-Api-Schema: json-error on every error", response, promise=API_SCHEMA_HEADER)
    if response.status_code < 400 and value is not None:
        raise ConformanceFailure("Success with X-Api-Schema", f"X-Api-Schema: {value} on a {response.status_code}",
                                 "no X-Api-Schema header on a success", response, promise=API_SCHEMA_HEADER)


def request_id_header(response: httpx.Response) -> None:
    """Every response names itself in a non-empty X-Request-Id; its format is the deployment's (UUID in production, 32 hex elsewhere)."""
    value = response.headers.get("X-Request-Id")
    if value is None or not value.strip():
        raise ConformanceFailure("X-Request-Id missing or empty", "no X-Request-Id header" if value is None else "X-Request-Id: (empty)",
                                 "a non-empty X-Request-Id on every response", response, promise=REQUEST_ID_HEADER)


def rate_limit_headers_after_authentication(response: httpx.Response) -> None:
    """Errors answered after the rate limiter ran carry X-RateLimit-Permitted/Remaining (errors before it may not)."""
    code = error_code(response)
    if code not in codes_after_authentication():
        return
    missing = [name for name in ("X-RateLimit-Permitted", "X-RateLimit-Remaining") if name not in response.headers]
    if missing:
        raise ConformanceFailure(f"{response.status_code} {code} without rate-limit headers", f"no {' or '.join(missing)}",
                                 "X-RateLimit-Permitted and X-RateLimit-Remaining on every response past authentication",
                                 response, promise=RATE_LIMIT_HEADERS)


def no_echoed_credential(response: httpx.Response) -> None:
    """The response never repeats the token the request presented (the real descriptions are fixed texts)."""
    sent = response.request.headers.get("Authorization", "").strip()
    token = sent.split(" ", 1)[-1].strip()
    if len(token) >= MIN_ECHOED_TOKEN and token.encode() in response.content:
        raise ConformanceFailure("Response echoes the credential", "the request's token appears in the response body",
                                 "no credential in any response", response)


def conforms_to_fragment(response: httpx.Response) -> None:
    """Status documented, JSON content type, headers and body valid for that status (schemathesis' checks), no credential echoed."""
    not_a_server_error(response)
    no_echoed_credential(response)
    request_id_header(response)
    api_schema_header(response)
    rate_limit_headers_after_authentication(response)
    try:
        response_case().validate_response(as_schemathesis_response(response), checks=SCHEMATHESIS_CHECKS)
    except FailureGroup as group:
        failures = list(group.exceptions)
        title = getattr(failures[0], "title", "Response does not conform to the fragment")
        found = "".join(
            f"\n  - {getattr(f, 'title', type(f).__name__)}\n" + textwrap.indent(str(getattr(f, "message", f)).strip(), "      ")
            for f in failures
        )
        documented = f"{SPEC_PATH.parent.name}/{SPEC_PATH.name}, POST allocate_ip, responses for {response.status_code}"
        raise ConformanceFailure(title, f"a response schemathesis' checks reject:{found}", documented, response) from None


def error_code(response: httpx.Response) -> str | None:
    """`error.code` of an error body, or None if the body has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def error_detail(response: httpx.Response) -> dict[str, Any]:
    """`error.detail` of an error body ({} when absent)."""
    detail = response.json().get("error", {}).get("detail")
    return detail if isinstance(detail, dict) else {}


def expect_error(response: httpx.Response, status: int, code: str) -> None:
    """The response is the documented error `status code`, in the wire's shape."""
    conforms_to_fragment(response)
    got_code = error_code(response)
    if response.status_code != status or got_code != code:
        raise ConformanceFailure(
            f"Expected {status} {code}", f"{response.status_code} {got_code or '(no error code)'}", f"{status} {code}", response
        )


def expect_issue(response: httpx.Response, issue: str) -> None:
    """A 400 invalid_argument whose detail.issue is the expected one."""
    expect_error(response, 400, "invalid_argument")
    got = error_detail(response).get("issue")
    if got != issue:
        raise ConformanceFailure(f"Expected invalid_argument issue {issue}", str(got), issue, response)


def is_ip_address(value: Any) -> bool:
    """Whether the value is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
