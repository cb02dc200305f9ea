"""The hand-written scenarios as data: one row per documented promise, provoked from the target fixtures.

A row's body is a template: strings starting with `$` are filled from the target fixtures or the run
(`$interface`, `$ip0.id`, `$elsewhere.address`, `$unknown_interface`, ...); a missing fixture entry
skips the row with a reason naming the key.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from conformance.cases.identities import identity_headers
from conformance.contract.checks import (
    ConformanceFailure,
    body_unusable,
    code_statuses,
    conforms_to_fragment,
    expect_error,
    expect_issue,
    is_ip_address,
    served_past_scope,
    status_of_code,
)
from conformance.contract.findings import charge_elsewhere
from conformance.contract.ids import (
    ARGUMENT_ERRORS,
    INTERFACE_FROM_PATH,
    INTERFACE_NOT_FOUND,
    INVALID_API_TOKEN,
    INVALID_CAPABILITIES_TOKEN,
    INVALID_IP,
    IP_ADDRESS_NOT_FOUND,
    IP_ALREADY_ALLOCATED,
    MALFORMED_BYTES,
    MISSING_API_TOKEN,
    MUTUAL_EXCLUSIVITY,
    ORDER_OF_CHECKS,
    OTHER_ORGANIZATION_INTERFACE,
    OTHER_ORGANIZATION_IP,
    QUERY_STRING_ARGUMENTS,
    RATE_LIMIT_REACHED,
    READ_ONLY_TOKEN_REFUSED,
    RESPONSE_SHAPE,
    SCOPE_NOT_GRANTED,
    SEMANTICS_200,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED_NETWORK,
)
from conformance.setup.fixtures import IPRef, TargetFixtures
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.paths import ALLOCATE_PATH

VALID_BODY = {"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$ip0.id"}}
NOT_JSON = b'{"virtual_machine_network_interface": {"id": '
# Bytes that are not UTF-8 (a promise of their own: the framework itself answered 500 to such a body when run). The real
# parser does not check strings to be UTF-8, so inside well-formed JSON they go on to the lookups, where a server may crash
# in its database; a body of them outright is no JSON at all. Right answers differ by where they are: any documented 4xx.
INVALID_UTF8 = b"\xff\xfe"
NOT_UTF8 = b'{"ip_address": {"id": "' + INVALID_UTF8 + b'"}}'
# A JSON body encoded as UTF-16, byte order mark first: not UTF-8 anywhere.
UTF16_BODY = '{"ip_address": {"id": "ip_conformance"}}'.encode("utf-16")
# Stands in a body template for INVALID_UTF8, which JSON text cannot carry; swapped for the bytes once the body is encoded.
INVALID_UTF8_MARK = "@@conformance-invalid-utf8@@"
SPEC = "spec/allocate_ip.yaml"
LONG_ID_LENGTH = 1000
# A token meant to lack the scope was served: no request tells a server that ignores scopes from a token that has it.
SERVED_WITHOUT_SCOPE = ("served past the scope check: either the server ignores the ip_addresses scope, or credentials.without_scope"
                        " holds it (a setup mistake: give a token without ip_addresses; on a live target the preflight asks unallocate"
                        " too, and a token served there as well is a doubt it reports)")


@dataclass(frozen=True)
class Row:
    """One scenario: who asks, what they send, what the documented answer is."""

    id: str
    promise: str
    description: str
    spec_ref: str
    # None: any documented 4xx in the wire's shape (never a 5xx), where the wire has more than one right answer.
    expect: tuple[int, str] | None
    credential: str = "valid"
    body: Any = field(default_factory=lambda: VALID_BODY)
    raw_body: bytes | None = None
    # Where else the arguments come from: the query string (`ip_address[id]`), the path's middle segment, the content type.
    query: dict[str, str] | None = None
    path_segment: str = "virtual_machine_network_interface"
    content_type: str = "application/json"
    issue: str | None = None
    detail: Callable[[dict[str, Any]], str | None] | None = None
    watch: tuple[str, ...] = ()
    # Promises this row builds on: when one already deviates, the row cannot tell its own promise apart, so it is not reached.
    depends: tuple[str, ...] = ()

    def needs(self) -> list[str]:
        """The fixture keys this row reads (for the README table)."""
        keys = {"network_interface.id"}
        if self.credential in ("valid", "non_bearer", "without_scope", "network_restricted", "invalid_capabilities"):
            keys.add("credentials.valid" if self.credential == "non_bearer" else f"credentials.{self.credential}")
        names = _template_names(self.body) | _template_names(self.query) | set(self.watch)
        keys |= {TEMPLATE_KEYS[name] for name in names if name in TEMPLATE_KEYS}
        return sorted(keys)


@dataclass(frozen=True)
class CodedScenario:
    """A scenario a row cannot say (several requests, or target switches): written as a test in conformance/test_*.py."""

    id: str
    promise: str
    description: str
    spec_ref: str
    needs: tuple[str, ...]


TEMPLATE_KEYS = {
    "ip0": "ip_addresses.allocatable",
    "ip1": "ip_addresses.allocatable (2 entries)",
    "elsewhere": "ip_addresses.allocated_elsewhere",
    "invalid": "ip_addresses.invalid_for_interface",
}


def _template_names(value: Any) -> set[str]:
    if isinstance(value, str) and value.startswith("$"):
        return {value[1:].split(".")[0]}
    if isinstance(value, dict):
        return set().union(*(_template_names(item) for item in value.values())) if value else set()
    return set()


def _scopes_hold_ip_addresses(detail: dict[str, Any]) -> str | None:
    scopes = detail.get("scopes")
    return None if isinstance(scopes, list) and "ip_addresses" in scopes else f"detail.scopes {scopes!r} lacks ip_addresses"


def _names_caller_address(detail: dict[str, Any]) -> str | None:
    value = detail.get("ip_address")
    return None if is_ip_address(value) else f"detail.ip_address {value!r} is not an IP address"


ROWS = (
    Row("missing-token", MISSING_API_TOKEN, "a request without a token is rejected with 400 missing_api_token",
        f"{SPEC}#/paths/allocate_ip/post/responses/400 (MissingAPITokenError)", (400, "missing_api_token"),
        credential="none", watch=("ip0",)),
    Row("non-bearer-token", MISSING_API_TOKEN, "a token sent with a non-Bearer scheme is rejected with 400 missing_api_token",
        f"{SPEC}#/components/securitySchemes/Authenticator", (400, "missing_api_token"),
        credential="non_bearer", watch=("ip0",)),
    Row("invalid-token", INVALID_API_TOKEN, "a token that does not exist is rejected with 403 invalid_api_token",
        f"{SPEC}#/components/schemas/InvalidAPITokenError", (403, "invalid_api_token"),
        credential="random", watch=("ip0",)),
    Row("scope-not-granted", SCOPE_NOT_GRANTED, "a token without the ip_addresses scope gets 403 scope_not_granted naming it",
        f"{SPEC}#/components/schemas/ScopeNotGrantedError", (403, "scope_not_granted"),
        credential="without_scope", detail=_scopes_hold_ip_addresses, watch=("ip0",)),
    Row("unauthorized-network", UNAUTHORIZED_NETWORK,
        "a token used from a network it is not allowed from gets 403 unauthorized_network_for_api_token with the caller's address",
        f"{SPEC}#/components/schemas/UnauthorizedNetworkForAPITokenError", (403, "unauthorized_network_for_api_token"),
        credential="network_restricted", detail=_names_caller_address, watch=("ip0",)),
    Row("invalid-capabilities", INVALID_CAPABILITIES_TOKEN, "an invalid capabilities token gets 403 invalid_capabilities_token",
        f"{SPEC}#/components/schemas/InvalidCapabilitiesTokenError", (403, "invalid_capabilities_token"),
        credential="invalid_capabilities", watch=("ip0",)),
    Row("interface-not-found", INTERFACE_NOT_FOUND,
        "an interface id that does not exist gets 404 virtual_machine_network_interface_not_found",
        f"{SPEC}#/components/schemas/VirtualMachineNetworkInterfaceNotFoundError", (404, "virtual_machine_network_interface_not_found"),
        body={"virtual_machine_network_interface": {"id": "$unknown_interface"}, "ip_address": {"id": "$ip0.id"}}, watch=("ip0",)),
    Row("ip-not-found-by-id", IP_ADDRESS_NOT_FOUND, "an IP id that does not exist gets 404 ip_address_not_found",
        f"{SPEC}#/components/schemas/IPAddressNotFoundError", (404, "ip_address_not_found"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$unknown_ip"}}),
    Row("ip-not-found-by-address", IP_ADDRESS_NOT_FOUND, "an address in no network gets 404 ip_address_not_found",
        f"{SPEC}#/components/schemas/IPAddressNotFoundError", (404, "ip_address_not_found"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"address": "$unknown_address"}}),
    Row("ip-not-found-long-id", IP_ADDRESS_NOT_FOUND, "a 1,000-character IP id is just an id that matches nothing: 404 ip_address_not_found",
        f"{SPEC}#/components/schemas/IPAddressLookup", (404, "ip_address_not_found"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$unknown_long_ip"}}),
    Row("already-allocated-by-id", IP_ALREADY_ALLOCATED, "an IP held by another resource gets 422 ip_already_allocated and stays there",
        f"{SPEC}#/components/schemas/IPAlreadyAllocatedError", (422, "ip_already_allocated"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$elsewhere.id"}}, watch=("elsewhere",)),
    Row("already-allocated-by-address", IP_ALREADY_ALLOCATED, "the same IP asked for by address gets 422 ip_already_allocated",
        f"{SPEC}#/components/schemas/IPAlreadyAllocatedError", (422, "ip_already_allocated"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"address": "$elsewhere.address"}}, watch=("elsewhere",)),
    Row("invalid-ip", INVALID_IP, "an IP from another network gets 422 invalid_ip and stays free",
        f"{SPEC}#/components/schemas/InvalidIPError", (422, "invalid_ip"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$invalid.id"}}, watch=("invalid",)),
    Row("exclusive-same-ip", MUTUAL_EXCLUSIVITY, "id and address of the same IP together are rejected as ambiguous_lookup_values",
        f"{SPEC}#/components/schemas/IPAddressLookup", (400, "invalid_argument"), issue="ambiguous_lookup_values",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$ip0.id", "address": "$ip0.address"}},
        watch=("ip0",)),
    Row("exclusive-two-ips", MUTUAL_EXCLUSIVITY, "id of one IP with address of another is rejected and allocates neither",
        f"{SPEC}#/components/schemas/IPAddressLookup", (400, "invalid_argument"), issue="ambiguous_lookup_values",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$ip0.id", "address": "$ip1.address"}},
        watch=("ip0", "ip1")),
    Row("exclusive-empty-lookup", MUTUAL_EXCLUSIVITY, "an empty ip_address lookup is rejected as missing_lookup_value",
        f"{SPEC}#/components/schemas/IPAddressLookup", (400, "invalid_argument"), issue="missing_lookup_value",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {}}),
    Row("exclusive-unknown-keys", MUTUAL_EXCLUSIVITY, "a lookup with only unknown keys is rejected as missing_lookup_value",
        f"{SPEC}#/components/schemas/IPAddressLookup", (400, "invalid_argument"), issue="missing_lookup_value",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"ip": "$ip0.address"}}, watch=("ip0",)),
    Row("exclusive-null-is-no-value", MUTUAL_EXCLUSIVITY, "a null address beside an unknown id is not ambiguous: 404 ip_address_not_found",
        f"{SPEC}#/components/schemas/IPAddressLookup", (404, "ip_address_not_found"),
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$unknown_ip", "address": None}},
        depends=(IP_ADDRESS_NOT_FOUND,)),
    Row("missing-ip-argument", ARGUMENT_ERRORS, "a body without ip_address gets 400 missing_required_argument",
        f"{SPEC}#/components/schemas/MissingRequiredArgumentError", (400, "missing_required_argument"),
        body={"virtual_machine_network_interface": {"id": "$interface"}}),
    Row("lookup-not-object", ARGUMENT_ERRORS, "an ip_address that is not an object gets 400 invalid_argument object_expected",
        f"{SPEC}#/components/schemas/InvalidArgumentError", (400, "invalid_argument"), issue="object_expected",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": "$ip0.id"}, watch=("ip0",)),
    Row("lookup-wrong-type", ARGUMENT_ERRORS, "a numeric ip_address id gets 400 invalid_argument invalid_scalar",
        f"{SPEC}#/components/schemas/InvalidArgumentError", (400, "invalid_argument"), issue="invalid_scalar",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": 12345}}),
    Row("body-not-json", ARGUMENT_ERRORS, "a body that is not JSON gets 400 invalid_json_body",
        f"{SPEC}#/components/schemas/InvalidJSONBodyError", (400, "invalid_json_body"), raw_body=NOT_JSON),
    Row("body-not-utf8", MALFORMED_BYTES,
        "invalid UTF-8 inside a JSON string is not rejected by the parser: a documented 4xx (on the wire 404"
        " virtual_machine_network_interface_not_found, the path's segment being no interface), never a 5xx",
        f"{SPEC}#/paths/allocate_ip/post/responses (any documented 4xx)", None, raw_body=NOT_UTF8),
    Row("ip-id-not-utf8", MALFORMED_BYTES,
        "an ip_address id of invalid UTF-8 beside a real interface reaches the IP lookup: a documented 4xx (on the wire 404"
        " ip_address_not_found), never a 5xx",
        f"{SPEC}#/paths/allocate_ip/post/responses (any documented 4xx)", None,
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$invalid_utf8"}}),
    Row("body-utf16", MALFORMED_BYTES,
        "a body that is not UTF-8 at all (JSON encoded as UTF-16): a documented 4xx (on the wire 400 invalid_json_body), never a 5xx",
        f"{SPEC}#/components/schemas/InvalidJSONBodyError", None, raw_body=UTF16_BODY),
    Row("empty-body-has-no-arguments", ARGUMENT_ERRORS, "an empty JSON body has no arguments: 400 missing_required_argument (ip_address)",
        f"{SPEC}#/components/schemas/MissingRequiredArgumentError", (400, "missing_required_argument"), raw_body=b""),
    Row("null-body-has-no-arguments", ARGUMENT_ERRORS, "a JSON null body has no arguments: 400 missing_required_argument (ip_address)",
        f"{SPEC}#/components/schemas/MissingRequiredArgumentError", (400, "missing_required_argument"), raw_body=b"null"),
    Row("array-body-has-no-arguments", ARGUMENT_ERRORS, "a JSON array body has no arguments: 400 missing_required_argument (ip_address)",
        f"{SPEC}#/components/schemas/MissingRequiredArgumentError", (400, "missing_required_argument"), raw_body=b'[{"ip_address": {"id": "x"}}]'),
    Row("interface-from-literal-path", INTERFACE_FROM_PATH,
        "a body without virtual_machine_network_interface takes the literal path segment as its id: 404 virtual_machine_network_interface_not_found",
        f"{SPEC}#/paths/allocate_ip (route parameter)", (404, "virtual_machine_network_interface_not_found"),
        body={"ip_address": {"id": "$ip0.id"}}, watch=("ip0",), depends=(INTERFACE_NOT_FOUND,)),
    Row("interface-from-underscore-path", INTERFACE_FROM_PATH,
        "the same with `_` as the path segment, as clients send it: 404 virtual_machine_network_interface_not_found",
        f"{SPEC}#/paths/allocate_ip (route parameter)", (404, "virtual_machine_network_interface_not_found"),
        body={"ip_address": {"id": "$ip0.id"}}, path_segment="_", watch=("ip0",), depends=(INTERFACE_NOT_FOUND,)),
    Row("interface-null-is-missing", INTERFACE_FROM_PATH,
        "an explicit null virtual_machine_network_interface is not filled from the path: 400 missing_required_argument",
        f"{SPEC}#/components/schemas/MissingRequiredArgumentError", (400, "missing_required_argument"),
        body={"virtual_machine_network_interface": None, "ip_address": {"id": "$ip0.id"}}, path_segment="$interface", watch=("ip0",),
        depends=(ARGUMENT_ERRORS,)),
    Row("query-id-body-address-ambiguous", QUERY_STRING_ARGUMENTS,
        "an ip_address[id] in the query beside an address in the body is one ambiguous lookup: 400 ambiguous_lookup_values",
        f"{SPEC}#/components/schemas/IPAddressLookup (arguments from the query string)", (400, "invalid_argument"),
        issue="ambiguous_lookup_values", query={"ip_address[id]": "$ip0.id"},
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"address": "$ip1.address"}}, watch=("ip0", "ip1"),
        depends=(MUTUAL_EXCLUSIVITY,)),
    Row("body-wins-over-query", QUERY_STRING_ARGUMENTS,
        "an ip_address id in the body wins over one in the query: an unknown body id gets 404 and the query's IP stays free",
        f"{SPEC}#/components/schemas/IPAddressLookup (arguments from the query string)", (404, "ip_address_not_found"),
        query={"ip_address[id]": "$ip0.id"},
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$unknown_ip"}}, watch=("ip0",),
        depends=(IP_ADDRESS_NOT_FOUND,)),
    Row("query-fills-missing-lookup", QUERY_STRING_ARGUMENTS,
        "arguments may come from the query string alone: an unknown ip_address[id] there gets 404 ip_address_not_found",
        f"{SPEC}#/components/schemas/IPAddressLookup (arguments from the query string)", (404, "ip_address_not_found"),
        query={"ip_address[id]": "$unknown_ip"}, body={"virtual_machine_network_interface": {"id": "$interface"}},
        depends=(IP_ADDRESS_NOT_FOUND, ARGUMENT_ERRORS)),
    Row("json-as-text-plain-ignored", QUERY_STRING_ARGUMENTS,
        "a valid JSON body sent as text/plain is not read: no ip_address, 400 missing_required_argument, nothing allocated",
        f"{SPEC}#/paths/allocate_ip/post/requestBody (application/json only)", (400, "missing_required_argument"),
        content_type="text/plain", watch=("ip0",), depends=(ARGUMENT_ERRORS,)),
    Row("order-no-token-broken-body", ORDER_OF_CHECKS, "no token and a broken body still get 400 missing_api_token",
        f"{SPEC}#/paths/allocate_ip/post (authentication before arguments)", (400, "missing_api_token"),
        credential="none", raw_body=NOT_JSON, depends=(MISSING_API_TOKEN,)),
    Row("order-invalid-token-broken-body", ORDER_OF_CHECKS, "an invalid token and a broken body get 403 invalid_api_token",
        f"{SPEC}#/paths/allocate_ip/post (authentication before arguments)", (403, "invalid_api_token"),
        credential="random", raw_body=NOT_JSON, depends=(INVALID_API_TOKEN,)),
    Row("order-no-scope-broken-body", ORDER_OF_CHECKS, "a token without scope and a broken body get 403 scope_not_granted",
        f"{SPEC}#/paths/allocate_ip/post (scope before arguments)", (403, "scope_not_granted"),
        credential="without_scope", raw_body=NOT_JSON, depends=(SCOPE_NOT_GRANTED,)),
    Row("order-no-scope-ambiguous", ORDER_OF_CHECKS, "a token without scope and an ambiguous lookup get 403 scope_not_granted",
        f"{SPEC}#/paths/allocate_ip/post (scope before arguments)", (403, "scope_not_granted"),
        credential="without_scope",
        body={"virtual_machine_network_interface": {"id": "$interface"}, "ip_address": {"id": "$ip0.id", "address": "$ip0.address"}},
        watch=("ip0",), depends=(SCOPE_NOT_GRANTED,)),
)


CODED = (
    CodedScenario("test_allocate_free_ip[id]", SEMANTICS_200,
                  "allocating a free IP by id returns the interface asked for, in the documented shape, now holding that IP",
                  f"{SPEC}#/components/schemas/AllocateIP200", ("credentials.valid", "network_interface.id", "ip_addresses.allocatable")),
    CodedScenario("test_allocate_free_ip[address]", SEMANTICS_200, "the same, asking for the IP by address",
                  f"{SPEC}#/components/schemas/AllocateIP200", ("credentials.valid", "network_interface.id", "ip_addresses.allocatable")),
    CodedScenario("test_interface_from_path_segment", INTERFACE_FROM_PATH,
                  "a body with only ip_address, posted with the interface's id as the path segment, allocates the IP to it",
                  f"{SPEC}#/paths/allocate_ip (route parameter)", ("credentials.valid", "network_interface.id", "ip_addresses.allocatable")),
    CodedScenario("test_ip_held_by_the_other_machine_is_refused", IP_ALREADY_ALLOCATED,
                  "an IP the other interface's virtual machine just took gets 422 ip_already_allocated here and stays with that machine",
                  f"{SPEC}#/components/schemas/IPAlreadyAllocatedError",
                  ("credentials.valid", "network_interface.id", "other_network_interface.id (another virtual machine)", "ip_addresses.allocatable")),
    CodedScenario("test_rate_limit_reached", RATE_LIMIT_REACHED,
                  "a bounded burst past the limit gets 429 rate_limit_reached; total_permitted matches X-RateLimit-Permitted",
                  f"{SPEC}#/components/schemas/RateLimitReachedError", ("credentials.valid", "rate_limit.provoke: true")),
    CodedScenario("test_read_only_token_may_not_allocate", READ_ONLY_TOKEN_REFUSED,
                  "a token granted only ip_addresses:read gets 403 scope_not_granted naming exactly ip_addresses, the IP stays as it was,"
                  " and the same token reads it (200)", f"{SPEC}#/components/schemas/ScopeNotGrantedError",
                  ("credentials.read_only", "network_interface.id", "ip_addresses.allocatable")),
    CodedScenario("test_another_organizations_ip_is_not_found[id]", OTHER_ORGANIZATION_IP,
                  "another organization's IP asked for the fixture interface by id: 404 ip_address_not_found, not readable by"
                  " credentials.valid, and neither the interface's IPs nor (with its token) the other organization's IP change",
                  f"{SPEC}#/components/schemas/IPAddressNotFoundError", ("credentials.valid", "network_interface.id",
                                                                          "other_organization.ip_address")),
    CodedScenario("test_another_organizations_ip_is_not_found[address]", OTHER_ORGANIZATION_IP,
                  "the same, asking for it by address", f"{SPEC}#/components/schemas/IPAddressNotFoundError",
                  ("credentials.valid", "network_interface.id", "other_organization.ip_address")),
    CodedScenario("test_fixture_ip_to_another_organizations_interface_is_not_found", OTHER_ORGANIZATION_INTERFACE,
                  "a free fixture IP asked for another organization's interface: 404 virtual_machine_network_interface_not_found,"
                  " the IP stays free", f"{SPEC}#/components/schemas/VirtualMachineNetworkInterfaceNotFoundError",
                  ("credentials.valid", "other_organization.network_interface", "ip_addresses.allocatable")),
    CodedScenario("test_service_unavailable", SERVICE_UNAVAILABLE,
                  "in maintenance a request gets 503 service_unavailable (mock switch; on a live target every 503 seen is judged)",
                  f"{SPEC}#/components/schemas/ServiceUnavailableError", ("credentials.valid",)),
)


def markdown_table() -> str:
    """The scenario list for the README, generated from ROWS and CODED."""
    lines = ["| id | promise | description | fixture keys needed |", "| --- | --- | --- | --- |"]
    for row in ROWS:
        lines.append(f"| `{row.id}` | {row.promise} | {row.description} | {', '.join(row.needs())} |")
    for coded in CODED:
        lines.append(f"| `{coded.id}` | {coded.promise} | {coded.description} | {', '.join(coded.needs)} |")
    return "\n".join(lines)


@dataclass
class RunValues:
    """Values made up once per run: ids and a token that cannot exist on any target."""

    run_id: str

    def value(self, name: str) -> str:
        """A made-up value for `$unknown_*` placeholders."""
        made_up = {
            "unknown_interface": f"vmnet_conformance{self.run_id}",
            "unknown_ip": f"ip_conformance{self.run_id}",
            "unknown_long_ip": f"ip_conformance{self.run_id}".ljust(LONG_ID_LENGTH, "x"),
            "unknown_address": "192.0.2.123",
        }
        return made_up[name]


def ip_for(fixtures: TargetFixtures, name: str) -> IPRef:
    """The fixture IP a template name refers to (MissingFixture when the file lacks it)."""
    if name in ("ip0", "ip1"):
        return fixtures.allocatable_ip(int(name[2]))
    return fixtures.ip({"elsewhere": "allocated_elsewhere", "invalid": "invalid_for_interface"}[name])


def fill(template: Any, fixtures: TargetFixtures, run: RunValues) -> Any:
    """Fill a body template from the fixtures and the run's made-up values."""
    if isinstance(template, dict):
        return {key: fill(value, fixtures, run) for key, value in template.items()}
    if not (isinstance(template, str) and template.startswith("$")):
        return template
    name, _, attribute = template[1:].partition(".")
    if name == "interface":
        return fixtures.network_interface_id
    if name == "invalid_utf8":
        return INVALID_UTF8_MARK
    if name.startswith("unknown_"):
        return run.value(name)
    return getattr(ip_for(fixtures, name), attribute)


def request_for(row: Row, fixtures: TargetFixtures, run: RunValues) -> tuple[str, bytes, dict[str, str], dict[str, str]]:
    """The row's path, body bytes, headers and query parameters, filled from the fixtures and the run."""
    path = ALLOCATE_PATH.replace("/virtual_machine_network_interface/", f"/{fill(row.path_segment, fixtures, run)}/")
    content = row.raw_body if row.raw_body is not None else json.dumps(fill(row.body, fixtures, run)).encode()
    content = content.replace(INVALID_UTF8_MARK.encode(), INVALID_UTF8)
    headers = {**headers_for(row, fixtures, run), "Content-Type": row.content_type}
    query = {key: str(fill(value, fixtures, run)) for key, value in (row.query or {}).items()}
    return path, content, headers, query


def headers_for(row: Row, fixtures: TargetFixtures, run: RunValues) -> dict[str, str]:
    """The headers presenting the row's identity (MissingFixture when the file lacks its credential)."""
    return identity_headers(row.credential, fixtures, run.run_id)


def judge_row(row: Row, response: httpx.Response) -> None:
    """The response is the row's documented answer; a failure names the promise it broke."""
    try:
        _judge(row, response)
    except ConformanceFailure as failure:
        told = failure
        if row.credential == "without_scope" and failure.check == "status and code" and served_past_scope(response):
            told = failure.replaced(received=f"{failure.received}, {SERVED_WITHOUT_SCOPE}")
        told.add_note(f"Broken promise ({row.promise}): {row.description} [{row.spec_ref}]")
        if told is failure:
            raise
        raise told from None


def _judge(row: Row, response: httpx.Response) -> None:
    if row.expect is None:
        expect_documented_4xx(response)
        return
    status, code = row.expect
    failed = expect_issue(response, row.issue) if row.issue is not None else expect_error(response, status, code)
    # A detail the fragment's schema already rejected is the response shape's finding, not this row's.
    if row.detail is not None and not failed & {RESPONSE_SHAPE}:
        problem = row.detail(error_detail(response))
        if problem is not None:
            raise ConformanceFailure(f"Wrong detail for {code}", problem, row.description, response)


def expect_documented_4xx(response: httpx.Response) -> None:
    """Any 4xx the fragment documents, under its own status and in the wire's shape; never a 5xx (the wire checks say so first)."""
    failed = conforms_to_fragment(response, status_expected=True)
    if 400 <= response.status_code < 500:
        # A 4xx whose body breaks the fragment is the response shape's finding (already recorded), whatever its code says.
        body_unusable(response, failed)
        misfiled = status_of_code(response)
        if misfiled is not None:
            # A documented code under another status is that code's own deviation.
            charge_elsewhere(misfiled)
        if error_code(response) in code_statuses():
            return
    code = error_code(response)
    raise ConformanceFailure("Expected a documented 4xx", f"{response.status_code} {code or '(no error code)'}",
                             "a documented 4xx error (never a 5xx)", response, check="status and code")
