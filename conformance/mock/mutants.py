"""Miniature broken implementations: each mutant breaks one behaviour of the reference mock.

A mutant overrides as little of `ReferenceMock` as it can, so the deviation its description names is the only one.
`python -m conformance.tools.mutation` runs the suite against every mutant and reports which tests catch it.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from conformance.contract.ids import (
    API_SCHEMA_HEADER,
    ARGUMENT_ERRORS,
    CLEANUP,
    CONCURRENCY,
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
    NO_ECHOED_CREDENTIAL,
    NO_SERVER_ERRORS,
    NO_SIDE_EFFECTS,
    ORDER_OF_CHECKS,
    OTHER_ORGANIZATION_INTERFACE,
    OTHER_ORGANIZATION_IP,
    QUERY_STRING_ARGUMENTS,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_REACHED,
    READ_ONLY_TOKEN_REFUSED,
    REQUEST_ID_HEADER,
    RESPONSE_SHAPE,
    SCOPE_NOT_GRANTED,
    SEMANTICS_200,
    SERVICE_UNAVAILABLE,
    SHAPE_200,
    UNAUTHORIZED_NETWORK,
)
from conformance.mock.app import (
    ALLOCATE_ROUTE,
    INTERFACE_LOOKUP_KEYS,
    IP_LOOKUP_KEYS,
    READ_IP_ROUTE,
    SCOPE,
    ApiError,
    MockRequest,
    MockResponse,
    ReferenceMock,
    argument_error,
    deep_merge,
    query_arguments,
)
from conformance.mock.world import IPAddress, Token
from conformance.wire.paths import BASE_PATH

MUTANTS: dict[str, type[ReferenceMock]] = {}
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
LONG_ID = 255
M = TypeVar("M", bound=type[ReferenceMock])


class WorkerDied(Exception):
    """The server's worker died on this request: no answer, the connection closed (MockResponse.drop)."""


def mutant(name: str, description: str, breaks: tuple[str, ...]) -> Callable[[M], M]:
    """Register a mutant class under a stable kebab-case name, with a one-line description and the promises it breaks."""
    if not NAME_PATTERN.match(name) or name == ReferenceMock.name:
        raise ValueError(f"mutant name {name!r} must be kebab-case and not {ReferenceMock.name!r}")
    if name in MUTANTS:
        raise ValueError(f"mutant name {name!r} is registered twice")
    if not description.strip() or "\n" in description:
        raise ValueError(f"mutant {name!r} needs a one-line description")
    if not breaks:
        raise ValueError(f"mutant {name!r} must name the promises its deviation breaks")

    def register(cls: M) -> M:
        cls.name = name
        cls.description = cls.__doc__ = description
        cls.breaks = breaks
        MUTANTS[name] = cls
        return cls

    return register


def mock_class(name: str | None) -> type[ReferenceMock]:
    """The faithful mock for None/"faithful", else the named mutant; `a,b` switches on several at once. Unknown names are a clear error."""
    if name in (None, "", "faithful"):
        return ReferenceMock
    names = [part.strip() for part in name.split(",") if part.strip()]
    unknown = [part for part in names if part not in MUTANTS]
    if unknown:
        raise ValueError(f"unknown mutant {unknown[0]!r}: choose one of {', '.join(sorted(MUTANTS))}")
    if len(names) == 1:
        return MUTANTS[names[0]]
    # Each mutant overrides its own step and calls super() for the rest, so their deviations compose in one class.
    attributes = {"name": ",".join(names), "description": " + ".join(MUTANTS[part].description for part in names),
                  "breaks": tuple(dict.fromkeys(promise for part in names for promise in MUTANTS[part].breaks))}
    combined: type[ReferenceMock] = type("CombinedMutant", tuple(MUTANTS[part] for part in names), attributes)
    return combined


# --- shared helpers --------------------------------------------------------------------------------------------
def is_allocation(mock: ReferenceMock, body: Any) -> bool:
    """Whether a response body is allocate_ip's 200 (not the interface read's, which has the same shape)."""
    serving = mock.serving
    return isinstance(body, dict) and "virtual_machine_network_interface" in body and serving is not None and is_allocate_request(serving)


def is_allocate_request(request: MockRequest) -> bool:
    """Whether the request is POST .../allocate_ip."""
    path = request.path[len(BASE_PATH):]
    return request.method == "POST" and ALLOCATE_ROUTE.match(path) is not None


def ip_lookup(request: MockRequest) -> dict[str, Any]:
    """The request body's ip_address lookup, or {} when the body has none."""
    with suppress(ValueError):
        body = json.loads(request.body)
        lookup = body.get("ip_address") if isinstance(body, dict) else None
        return lookup if isinstance(lookup, dict) else {}
    return {}


def other_interface(mock: ReferenceMock, interface: dict[str, Any]) -> dict[str, Any]:
    """Some interface of the world that is not this one."""
    return next(other for other in mock.world.interfaces.values() if other["id"] != interface["id"])


def allocate_quietly(mock: ReferenceMock, request: MockRequest) -> None:
    """What a sloppy server does before rejecting: allocate the IP the body names (by id, else address) if both exist."""
    with suppress(ApiError, LookupError, TypeError, AttributeError):
        args = mock.with_interface_from_path(request, mock.arguments(request))
        interface = mock.find_interface(args["virtual_machine_network_interface"]["id"])
        lookup = args["ip_address"]
        key = "id" if lookup.get("id") is not None else "address"
        mock.allocate(mock.find_ip(key, lookup[key]), interface)


def validate_arguments(mock: ReferenceMock, request: MockRequest) -> None:
    """allocate_ip's argument checks on their own (parse the body, check both lookups)."""
    args = mock.with_interface_from_path(request, mock.arguments(request))
    mock.lookup_argument(args, "virtual_machine_network_interface", INTERFACE_LOOKUP_KEYS)
    mock.lookup_argument(args, "ip_address", IP_LOOKUP_KEYS)


@contextmanager
def amending(code: str, amend: Callable[[ApiError], None]) -> Iterator[None]:
    """Let `amend` change an ApiError with this code on its way out."""
    try:
        yield
    except ApiError as error:
        if error.code == code:
            amend(error)
        raise


class RecodesErrors(ReferenceMock):
    """Base: allocate_ip answers each error code in `recodes` with another (status, code)."""

    recodes: ClassVar[tuple[tuple[str, int, str], ...]] = ()

    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        try:
            return super().allocate_ip(request, headers)
        except ApiError as error:
            for code, status, new_code in self.recodes:
                if error.code == code:
                    # The new code's own detail fields, as the real error would carry them (invalid_api_token has details).
                    raise ApiError(status, new_code, {"details": None} if new_code == "invalid_api_token" else error.detail) from None
            raise


class AllocatesWhenRejecting(ReferenceMock):
    """Base: allocate_ip allocates the named IP anyway before answering an error whose code or issue is in `leaky`."""

    leaky: ClassVar[frozenset[str]] = frozenset()

    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        try:
            return super().allocate_ip(request, headers)
        except ApiError as error:
            if error.code in self.leaky or error.detail.get("issue") in self.leaky:
                allocate_quietly(self, request)
            raise


class PrefersLookupKey(ReferenceMock):
    """Base: an ip_address lookup giving both id and address is accepted, and `winner` is used."""

    winner: ClassVar[str] = "id"

    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        lookup = args.get(name)
        if name == "ip_address" and isinstance(lookup, dict) and all(lookup.get(key) is not None for key in keys):
            return self.winner, lookup[self.winner]
        return super().lookup_argument(args, name, keys)


class CrashesOnId(ReferenceMock):
    """Base: a lookup value `crashes_on` accepts makes the server fail with a 500."""

    def crashes_on(self, value: str) -> bool:
        """Whether this value crashes the server."""
        return False

    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        key, value = super().lookup_argument(args, name, keys)
        if isinstance(value, str) and self.crashes_on(value):
            raise ApiError(500, "unhandled_exception")
        return key, value


# --- shape -----------------------------------------------------------------------------------------------------
@mutant("200-missing-mac-address", "the 200 body lacks the required mac_address field", breaks=(SHAPE_200,))
class MissingMacAddress(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        del body["mac_address"]
        return body


@mutant("200-unwrapped", "the 200 body is the interface itself, not wrapped in virtual_machine_network_interface", breaks=(SHAPE_200,))
class Unwrapped200(ReferenceMock):
    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = super().allocate_ip(request, headers)["virtual_machine_network_interface"]
        return body


@mutant("200-network-as-string", "the 200 body's network is its id string instead of an {id, name} object", breaks=(SHAPE_200,))
class NetworkAsString(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        if body["network"] is not None:
            body["network"] = body["network"]["id"]
        return body


@mutant("200-null-virtual-network-as-object", "the 200 body sends an absent virtual_network as {} instead of null", breaks=(SHAPE_200,))
class NullVirtualNetworkAsObject(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        body["virtual_network"] = body["virtual_network"] or {}
        return body


@mutant("200-ip-item-missing-address", "the 200 body's ip_addresses items carry only an id, no address", breaks=(SHAPE_200,))
class IPItemMissingAddress(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        body["ip_addresses"] = [{"id": item["id"]} for item in body["ip_addresses"]]
        return body


@mutant("200-without-rate-limit-headers", "the 200 lacks the X-RateLimit-Permitted and X-RateLimit-Remaining headers", breaks=(RATE_LIMIT_HEADERS,))
class WithoutRateLimitHeaders(ReferenceMock):
    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        if is_allocation(self, body):
            headers.pop("X-RateLimit-Permitted", None)
            headers.pop("X-RateLimit-Remaining", None)
        return super().respond(status, body, headers)


@mutant("request-id-empty", "X-Request-Id is sent empty", breaks=(REQUEST_ID_HEADER,))
class RequestIdEmpty(ReferenceMock):
    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        headers["X-Request-Id"] = ""
        return super().respond(status, body, headers)


@mutant("errors-unwrapped", "error bodies are the bare {code, description, detail}, without the error envelope", breaks=(RESPONSE_SHAPE,))
class ErrorsUnwrapped(ReferenceMock):
    def error_body(self, error: ApiError) -> dict[str, Any]:
        inner: dict[str, Any] = super().error_body(error)["error"]
        return inner


@mutant("error-detail-null", "errors whose detail is an empty object send detail: null", breaks=(RESPONSE_SHAPE,))
class ErrorDetailNull(ReferenceMock):
    # One fault of the shared envelope, shown by every code with an empty detail: charged once, to the response shape.
    def error_body(self, error: ApiError) -> dict[str, Any]:
        body: dict[str, Any] = super().error_body(error)
        if body["error"]["detail"] == {}:
            body["error"]["detail"] = None
        return body


@mutant("scope-error-without-scopes", "403 scope_not_granted has an empty detail (no detail.scopes)", breaks=(SCOPE_NOT_GRANTED,))
class ScopeErrorWithoutScopes(ReferenceMock):
    def check_scope(self, token: Token) -> None:
        with amending("scope_not_granted", lambda error: error.detail.clear()):
            super().check_scope(token)


@mutant("429-total-permitted-string", "429 rate_limit_reached gives detail.total_permitted as a string", breaks=(RATE_LIMIT_REACHED,))
class TotalPermittedString(ReferenceMock):
    def count_request(self, token: Token, headers: dict[str, str]) -> None:
        with amending("rate_limit_reached", lambda error: error.detail.update(total_permitted=str(self.world.permitted))):
            super().count_request(token, headers)


@mutant("network-error-names-allowed-network", "403 unauthorized_network_for_api_token names the allowed network, not the caller's address",
        breaks=(UNAUTHORIZED_NETWORK,))
class NetworkErrorNamesAllowedNetwork(ReferenceMock):
    def authenticate(self, request: MockRequest) -> Token:
        def name_network(error: ApiError) -> None:
            token = self.world.tokens[self.bearer_token(request) or ""]
            error.detail["ip_address"] = str(token.allowed_networks[0])

        with amending("unauthorized_network_for_api_token", name_network):
            return super().authenticate(request)


# --- status and code -------------------------------------------------------------------------------------------
@mutant("missing-token-401", "a request without a token gets 401 instead of 400 missing_api_token", breaks=(MISSING_API_TOKEN,))
class MissingToken401(RecodesErrors):
    recodes = (("missing_api_token", 401, "missing_api_token"),)


@mutant("missing-token-403", "a request without a token gets 403 instead of 400 missing_api_token", breaks=(MISSING_API_TOKEN,))
class MissingToken403(RecodesErrors):
    recodes = (("missing_api_token", 403, "missing_api_token"),)


@mutant("invalid-token-401", "an unknown token gets 401 instead of 403 invalid_api_token", breaks=(INVALID_API_TOKEN,))
class InvalidToken401(RecodesErrors):
    recodes = (("invalid_api_token", 401, "invalid_api_token"),)


@mutant("already-allocated-409", "ip_already_allocated comes with 409 instead of 422", breaks=(IP_ALREADY_ALLOCATED,))
class AlreadyAllocated409(RecodesErrors):
    recodes = (("ip_already_allocated", 409, "ip_already_allocated"),)


@mutant("not-found-codes-swapped", "the two 404 codes are swapped: an unknown interface says ip_address_not_found and vice versa",
        breaks=(INTERFACE_NOT_FOUND, IP_ADDRESS_NOT_FOUND))
class NotFoundCodesSwapped(RecodesErrors):
    recodes = (
        ("virtual_machine_network_interface_not_found", 404, "ip_address_not_found"),
        ("ip_address_not_found", 404, "virtual_machine_network_interface_not_found"),
    )


@mutant("unprocessable-codes-swapped", "the two 422 codes are swapped: ip_already_allocated and invalid_ip",
        breaks=(IP_ALREADY_ALLOCATED, INVALID_IP))
class UnprocessableCodesSwapped(RecodesErrors):
    recodes = (("ip_already_allocated", 422, "invalid_ip"), ("invalid_ip", 422, "ip_already_allocated"))


@mutant("capabilities-token-as-invalid-api-token", "a bad capabilities token gets invalid_api_token instead of invalid_capabilities_token",
        breaks=(INVALID_CAPABILITIES_TOKEN,))
class CapabilitiesTokenAsInvalidAPIToken(RecodesErrors):
    recodes = (("invalid_capabilities_token", 403, "invalid_api_token"),)


@mutant("missing-argument-as-invalid-argument", "a missing ip_address gets invalid_argument, not missing_required_argument",
        breaks=(ARGUMENT_ERRORS,))
class MissingArgumentAsInvalidArgument(ReferenceMock):
    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        if name not in args:
            raise argument_error([name], "missing_lookup_value")
        return super().lookup_argument(args, name, keys)


# --- semantics -------------------------------------------------------------------------------------------------
@mutant("200-returns-other-interface", "the 200 body describes another interface than the one asked for", breaks=(SEMANTICS_200,))
class ReturnsOtherInterface(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        return super().render_interface(other_interface(self, interface))


@mutant("200-omits-allocated-ip", "the 200 body's ip_addresses leaves out the IP just allocated", breaks=(SEMANTICS_200,))
class OmitsAllocatedIP(ReferenceMock):
    just_allocated: str | None = None

    def allocate(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        super().allocate(ip, interface)
        self.just_allocated = ip.id

    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        body["ip_addresses"] = [item for item in body["ip_addresses"] if item["id"] != getattr(self, "just_allocated", None)]
        return body


@mutant("allocates-to-other-interface", "the IP goes to another interface, though the 200 body lists it under the one asked for",
        breaks=(SEMANTICS_200, CLEANUP))
class AllocatesToOtherInterface(ReferenceMock):
    just_allocated: IPAddress | None = None

    def allocate(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        super().allocate(ip, other_interface(self, interface))
        self.just_allocated = ip

    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        if self.just_allocated is not None:
            body["ip_addresses"].append({"id": self.just_allocated.id, "address": self.just_allocated.address})
        return body


@mutant("already-allocated-ip-moved", "an IP held by another interface is silently moved (200) instead of 422 ip_already_allocated",
        breaks=(IP_ALREADY_ALLOCATED,))
class AlreadyAllocatedMoved(ReferenceMock):
    def check_allocatable(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        super().check_allocatable(replace(ip, allocated_to=None), interface)


@mutant("invalid-ip-unchecked", "an IP from another network is allocated (200) instead of 422 invalid_ip", breaks=(INVALID_IP,))
class InvalidIPUnchecked(ReferenceMock):
    def check_allocatable(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        super().check_allocatable(replace(ip, network=interface["network"]), interface)


@mutant("invalid-scalar-unchecked", "a lookup value of the wrong type ({\"id\": 123}) is used as a string instead of 400 invalid_scalar",
        breaks=(ARGUMENT_ERRORS,))
class InvalidScalarUnchecked(ReferenceMock):
    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        lookup = args.get(name)
        if isinstance(lookup, dict):
            lookup = {key: value if value is None or isinstance(value, str) else str(value) for key, value in lookup.items()}
            args = {**args, name: lookup}
        return super().lookup_argument(args, name, keys)


# --- exclusivity -----------------------------------------------------------------------------------------------
@mutant("exclusivity-id-wins", "both ip_address lookup keys are accepted and id wins", breaks=(MUTUAL_EXCLUSIVITY,))
class ExclusivityIdWins(PrefersLookupKey):
    winner = "id"


@mutant("exclusivity-address-wins", "both ip_address lookup keys are accepted and address wins", breaks=(MUTUAL_EXCLUSIVITY,))
class ExclusivityAddressWins(PrefersLookupKey):
    winner = "address"


@mutant("empty-lookup-accepted", "a lookup with no value ({} or only unknown keys) is looked up as id null (404) instead of 400 missing_lookup_value",
        breaks=(MUTUAL_EXCLUSIVITY,))
class EmptyLookupAccepted(ReferenceMock):
    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        lookup = args.get(name)
        if isinstance(lookup, dict) and not any(key in lookup for key in keys):
            return keys[0], None
        return super().lookup_argument(args, name, keys)


@mutant("null-is-a-value", "a null beside a value ({\"id\": x, \"address\": null}) counts as ambiguous_lookup_values", breaks=(MUTUAL_EXCLUSIVITY,))
class NullIsAValue(ReferenceMock):
    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        lookup = args.get(name)
        if isinstance(lookup, dict) and sum(key in lookup for key in keys) > 1:
            raise argument_error([name], "ambiguous_lookup_values")
        return super().lookup_argument(args, name, keys)


# --- order of checks -------------------------------------------------------------------------------------------
@mutant("arguments-before-authentication", "the arguments are validated before the token, so a bad body beats a missing token",
        breaks=(RATE_LIMIT_HEADERS, ORDER_OF_CHECKS))
class ArgumentsBeforeAuthentication(ReferenceMock):
    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        validate_arguments(self, request)
        return super().allocate_ip(request, headers)


@mutant("scope-after-arguments", "the scope is checked after the arguments, so a bad body beats a missing scope",
        breaks=(RATE_LIMIT_HEADERS, ORDER_OF_CHECKS))
class ScopeAfterArguments(ReferenceMock):
    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        if SCOPE not in self.authenticate(request).scopes:
            validate_arguments(self, request)
        return super().allocate_ip(request, headers)


@mutant("rate-limit-never-429", "the rate limit is counted in the headers but never enforced: no 429", breaks=(RATE_LIMIT_REACHED,))
class RateLimitNever429(ReferenceMock):
    def count_request(self, token: Token, headers: dict[str, str]) -> None:
        with suppress(ApiError):
            super().count_request(token, headers)


@mutant("maintenance-ignored", "maintenance mode answers normally instead of 503 service_unavailable", breaks=(SERVICE_UNAVAILABLE,))
class MaintenanceIgnored(ReferenceMock):
    def check_maintenance(self) -> None:
        """Never in maintenance."""


# --- side effects ----------------------------------------------------------------------------------------------
@mutant("422-still-allocates", "a 422 (ip_already_allocated, invalid_ip) is answered but the IP is allocated anyway", breaks=(NO_SIDE_EFFECTS,))
class Rejected422StillAllocates(AllocatesWhenRejecting):
    leaky = frozenset({"ip_already_allocated", "invalid_ip"})


@mutant("ambiguous-still-allocates", "400 ambiguous_lookup_values is answered but the IP named by id is allocated anyway",
        breaks=(NO_SIDE_EFFECTS,))
class AmbiguousStillAllocates(AllocatesWhenRejecting):
    leaky = frozenset({"ambiguous_lookup_values"})


@mutant("scope-denied-still-allocates", "403 scope_not_granted is answered but the IP is allocated anyway", breaks=(NO_SIDE_EFFECTS,))
class ScopeDeniedStillAllocates(AllocatesWhenRejecting):
    leaky = frozenset({"scope_not_granted"})


@mutant("unallocate-noop", "unallocate answers 200 {} but leaves the IP allocated", breaks=(CLEANUP,))
class UnallocateNoop(ReferenceMock):
    def unallocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        holders = {ip.id: ip.allocated_to for ip in self.world.ips.values()}
        answer = super().unallocate_ip(request, headers)
        for ip in self.world.ips.values():
            ip.allocated_to = holders[ip.id]
        return answer


# --- security --------------------------------------------------------------------------------------------------
@mutant("invalid-token-accepted", "an unknown token is accepted as if it held the ip_addresses scope", breaks=(INVALID_API_TOKEN,))
class InvalidTokenAccepted(ReferenceMock):
    def authenticate(self, request: MockRequest) -> Token:
        try:
            return super().authenticate(request)
        except ApiError as error:
            token = self.bearer_token(request)
            if error.code != "invalid_api_token" or token is None:
                raise
            return Token(token, (SCOPE,))


@mutant("scope-not-required", "a token without the ip_addresses scope is served", breaks=(SCOPE_NOT_GRANTED, READ_ONLY_TOKEN_REFUSED))
class ScopeNotRequired(ReferenceMock):
    def check_scope(self, token: Token) -> None:
        """Every token will do."""


@mutant("network-restriction-ignored", "a token restricted to other networks is served from anywhere",
        breaks=(UNAUTHORIZED_NETWORK,))
class NetworkRestrictionIgnored(ReferenceMock):
    def network_allowed(self, token: Token, client: str) -> bool:
        return True


@mutant("non-bearer-scheme-accepted", "a token sent with any scheme (e.g. `Token <token>`) is accepted as a bearer token",
        breaks=(MISSING_API_TOKEN,))
class NonBearerSchemeAccepted(ReferenceMock):
    def bearer_token(self, request: MockRequest) -> str | None:
        return (request.header("Authorization") or "").strip().partition(" ")[2].strip() or None


@mutant("token-echoed-in-error", "authentication errors repeat the bearer token in their description", breaks=(NO_ECHOED_CREDENTIAL,))
class TokenEchoedInError(ReferenceMock):
    def authenticate(self, request: MockRequest) -> Token:
        try:
            return super().authenticate(request)
        except ApiError as error:
            token = self.bearer_token(request)
            if token is not None:
                error.description = f"{error.description} (token: {token})"
            raise


# --- transport -------------------------------------------------------------------------------------------------
@mutant("errors-text-html", "error responses carry Content-Type: text/html", breaks=(RESPONSE_SHAPE,))
class ErrorsTextHtml(ReferenceMock):
    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        response = super().respond(status, body, headers)
        if status >= 400:
            response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response


@mutant("200-invalid-json", "the 200 body is truncated JSON", breaks=(SHAPE_200,))
class InvalidJSON200(ReferenceMock):
    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        response = super().respond(status, body, headers)
        if is_allocation(self, body):
            response.body = response.body[:-1]
        return response


# Invalid UTF-8 inside a JSON string reaches the lookups as non-ASCII too (the real parser does not reject it): a crash there
# breaks the malformed-bytes promise as well.
@mutant("500-on-non-ascii-id", "a lookup value with non-ASCII characters crashes the server (500) instead of a 404",
        breaks=(NO_SERVER_ERRORS, MALFORMED_BYTES))
class CrashesOnNonASCII(CrashesOnId):
    def crashes_on(self, value: str) -> bool:
        return not value.isascii()


@mutant("500-on-long-id", f"a lookup value longer than {LONG_ID} characters crashes the server (500) instead of a 404", breaks=(NO_SERVER_ERRORS,))
class CrashesOnLongId(CrashesOnId):
    def crashes_on(self, value: str) -> bool:
        return len(value) > LONG_ID


@mutant("drops-connection-on-long-id", f"a lookup value longer than {LONG_ID} characters kills the server's worker: the connection"
        " closes without an answer, every time", breaks=(IP_ADDRESS_NOT_FOUND,))
class DropsConnectionOnLongId(ReferenceMock):
    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        key, value = super().lookup_argument(args, name, keys)
        if isinstance(value, str) and len(value) > LONG_ID:
            raise WorkerDied
        return key, value

    def handle(self, request: MockRequest) -> MockResponse:
        try:
            return super().handle(request)
        except WorkerDied:
            return MockResponse(0, b"", drop=True)


@mutant("invalid-json-body-500", "a body that is not JSON crashes the server (500) instead of 400 invalid_json_body",
        breaks=(NO_SERVER_ERRORS, MALFORMED_BYTES))
class InvalidJSONBody500(RecodesErrors):
    recodes = (("invalid_json_body", 500, "unhandled_exception"),)


@mutant("hang-on-allocate-by-address", "the first successful allocation by address is made, but its response never comes", breaks=(SHAPE_200,))
class HangOnAllocateByAddress(ReferenceMock):
    hung = False

    def handle(self, request: MockRequest) -> MockResponse:
        response = super().handle(request)
        if not self.hung and response.status == 200 and is_allocate_request(request) and ip_lookup(request).get("address") is not None:
            # Once is enough to be a lost response; hanging every time would make each replay cost a full timeout.
            self.hung = response.hang = True
        return response


# --- the wire's own conventions (fact sheet, revised 2026-12-01) ------------------------------------------------
@mutant("errors-without-x-api-schema", "error responses lack the X-Api-Schema: json-error header", breaks=(API_SCHEMA_HEADER,))
class ErrorsWithoutApiSchema(ReferenceMock):
    def handle(self, request: MockRequest) -> MockResponse:
        response = super().handle(request)
        response.headers.pop("X-Api-Schema", None)
        return response


@mutant("success-with-x-api-schema", "successful responses carry X-Api-Schema: json-error too", breaks=(API_SCHEMA_HEADER,))
class SuccessWithApiSchema(ReferenceMock):
    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        headers["X-Api-Schema"] = "json-error"
        return super().respond(status, body, headers)


@mutant("errors-without-rate-limit-headers", "errors answered past authentication (404, 422, argument errors) lack X-RateLimit-*",
        breaks=(RATE_LIMIT_HEADERS,))
class ErrorsWithoutRateLimitHeaders(ReferenceMock):
    def handle(self, request: MockRequest) -> MockResponse:
        response = super().handle(request)
        if response.status >= 400:
            response.headers.pop("X-RateLimit-Permitted", None)
            response.headers.pop("X-RateLimit-Remaining", None)
        return response


@mutant("200-lists-only-new-ip", "the 200 body's ip_addresses lists only the IP just allocated, not those the interface held before",
        breaks=(SEMANTICS_200,))
class ListsOnlyNewIP(ReferenceMock):
    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        body = super().allocate_ip(request, headers)
        lookup = self.with_interface_from_path(request, self.arguments(request)).get("ip_address") or {}
        key = "id" if lookup.get("id") is not None else "address"
        body["virtual_machine_network_interface"]["ip_addresses"] = [
            item for item in body["virtual_machine_network_interface"]["ip_addresses"] if item[key] == lookup.get(key)]
        return body


@mutant("allocation-names-interface", "GET ip_address names the interface as the holder, not its virtual machine", breaks=(SEMANTICS_200,))
class AllocationNamesInterface(ReferenceMock):
    def holder(self, ip: IPAddress) -> dict[str, Any] | None:
        if ip.allocated_to is None:
            return None
        return {"type": "VirtualMachine", "value": {"id": ip.allocated_to, "name": "interface"}}


@mutant("path-segment-ignored", "a body without virtual_machine_network_interface is refused (400) instead of filled from the path",
        breaks=(INTERFACE_FROM_PATH,))
class PathSegmentIgnored(ReferenceMock):
    def with_interface_from_path(self, request: MockRequest, args: dict[str, Any]) -> dict[str, Any]:
        return args


@mutant("null-interface-filled-from-path", "an explicit null virtual_machine_network_interface is filled from the path too",
        breaks=(INTERFACE_FROM_PATH,))
class NullInterfaceFilledFromPath(ReferenceMock):
    def with_interface_from_path(self, request: MockRequest, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("virtual_machine_network_interface") is None:
            args = {key: value for key, value in args.items() if key != "virtual_machine_network_interface"}
        return super().with_interface_from_path(request, args)


@mutant("query-string-ignored", "allocate_ip ignores arguments in the query string", breaks=(QUERY_STRING_ARGUMENTS,))
class QueryStringIgnored(ReferenceMock):
    def arguments(self, request: MockRequest) -> dict[str, Any]:
        return self.parse_body(request) if is_allocate_request(request) else super().arguments(request)


@mutant("query-wins-over-body", "allocate_ip lets query-string arguments win over the JSON body's", breaks=(QUERY_STRING_ARGUMENTS,))
class QueryWinsOverBody(ReferenceMock):
    def arguments(self, request: MockRequest) -> dict[str, Any]:
        if not is_allocate_request(request):
            return super().arguments(request)
        return deep_merge(self.parse_body(request), query_arguments(request.query))


@mutant("json-read-whatever-content-type", "the body is read as JSON whatever its Content-Type (text/plain too)", breaks=(QUERY_STRING_ARGUMENTS,))
class JSONWhateverContentType(ReferenceMock):
    def parse_body(self, request: MockRequest) -> dict[str, Any]:
        headers = {key: value for key, value in request.headers.items() if key.lower() != "content-type"}
        return super().parse_body(replace(request, headers={**headers, "Content-Type": "application/json"}))


@mutant("non-object-body-invalid-json", "a JSON body that is null or not an object gets 400 invalid_json_body instead of counting as {}",
        breaks=(ARGUMENT_ERRORS,))
class NonObjectBodyInvalidJSON(ReferenceMock):
    def parse_body(self, request: MockRequest) -> dict[str, Any]:
        parsed = super().parse_body(request)
        if not parsed and request.body.strip():
            raise ApiError(400, "invalid_json_body", {"details": "not an object"})
        return parsed


@mutant("500-on-non-utf8-body", "a body of bytes that are not UTF-8 crashes the server (500 unhandled_exception), as the framework did when run",
        breaks=(MALFORMED_BYTES,))
class CrashesOnNonUTF8(ReferenceMock):
    def parse_body(self, request: MockRequest) -> dict[str, Any]:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(500, "unhandled_exception") from None
        return super().parse_body(request)


@mutant("rate-limit-remaining-counts-up", "X-RateLimit-Remaining counts up instead of down within a window", breaks=(RATE_LIMIT_HEADERS,))
class RemainingCountsUp(ReferenceMock):
    def count_request(self, token: Token, headers: dict[str, str]) -> None:
        super().count_request(token, headers)
        window = self.windows[token.token]
        headers["X-RateLimit-Remaining"] = str(min(window.used, self.world.permitted))


# --- concurrency (issue #12) -----------------------------------------------------------------------------------
# The race is made deterministic: a request that has passed its checks waits, without the mock's lock, until a rival
# request has passed the same checks (or RACE_WINDOW seconds), then writes. A lone request only waits.
RACE_WINDOW = 0.25


@mutant("check-then-act-allocator", "the allocator checks the IP is free, then takes it unlocked: two concurrent requests for it both get 200",
        breaks=(CONCURRENCY,))
class CheckThenActAllocator(ReferenceMock):
    def reset(self) -> None:
        super().reset()
        self.checked = threading.Condition()
        self.arrivals: dict[str, int] = {}

    def allocate(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        with self.checked:
            mine = self.arrivals[ip.id] = self.arrivals.get(ip.id, 0) + 1
            self.checked.notify_all()
        # handle() holds the mock's lock once; letting go of it here is the bug.
        self.lock.release()
        try:
            with self.checked:
                self.checked.wait_for(lambda: self.arrivals[ip.id] > mine, timeout=RACE_WINDOW)
        finally:
            self.lock.acquire()
        super().allocate(ip, interface)


# --- cleanup (issue #11): IPs moved that no request asked for ---------------------------------------------------
@mutant("not-found-allocates-a-free-ip", "a 404 ip_address_not_found allocates some other free IP of the interface's network anyway",
        breaks=(NO_SIDE_EFFECTS,))
class NotFoundAllocatesFreeIP(ReferenceMock):
    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        try:
            return super().allocate_ip(request, headers)
        except ApiError as error:
            if error.code == "ip_address_not_found":
                with suppress(ApiError, LookupError, TypeError, AttributeError):
                    args = self.with_interface_from_path(request, self.arguments(request))
                    interface = self.find_interface(args["virtual_machine_network_interface"]["id"])
                    free = sorted((ip for ip in self.world.ips.values() if ip.allocated_to is None and ip.network == interface["network"]),
                                  key=lambda ip: ip.id)
                    if free:
                        self.allocate(free[-1], interface)
            raise


# --- authorization beyond one token (issue #26) ------------------------------------------------------------------
READ_SCOPE = "ip_addresses:read"


def is_read_ip_request(request: MockRequest) -> bool:
    """Whether the request is GET /ip_addresses/ip_address."""
    return request.method == "GET" and READ_IP_ROUTE.match(request.path[len(BASE_PATH):]) is not None


@contextmanager
def unscoped(mock: ReferenceMock, leaking: bool) -> Iterator[None]:
    """While `leaking`, the mock's lookups see every organization's objects (as for a request with no caller)."""
    caller = mock.caller
    if leaking:
        mock.caller = None
    try:
        yield
    finally:
        mock.caller = caller


class SeesEveryOrganization(ReferenceMock):
    """Base: the `leaky` lookup ("ip" or "interface") of the requests `leaks` picks finds every organization's objects."""

    leaky: ClassVar[str] = "ip"

    def leaks(self, request: MockRequest) -> bool:
        """Whether this request's `leaky` lookup ignores organizations."""
        return False

    def leaking(self, lookup: str) -> bool:
        return lookup == self.leaky and self.serving is not None and self.leaks(self.serving)

    def find_interface(self, value: Any) -> dict[str, Any]:
        with unscoped(self, self.leaking("interface")):
            return super().find_interface(value)

    def find_ip(self, key: str, value: Any) -> IPAddress:
        with unscoped(self, self.leaking("ip")):
            return super().find_ip(key, value)


@mutant("read-scope-allocates", "a token granted only ip_addresses:read is served by allocate_ip as if it held ip_addresses",
        breaks=(READ_ONLY_TOKEN_REFUSED,))
class ReadScopeAllocates(ReferenceMock):
    def check_scope(self, token: Token) -> None:
        if READ_SCOPE not in token.scopes:
            super().check_scope(token)


@mutant("another-organizations-ip-allocated", "allocate_ip finds another organization's IP, by id or by address, and allocates it",
        breaks=(OTHER_ORGANIZATION_IP, CLEANUP))
class AnotherOrganizationsIPAllocated(SeesEveryOrganization):
    def leaks(self, request: MockRequest) -> bool:
        return is_allocate_request(request)


@mutant("allocated-to-another-organizations-interface", "allocate_ip finds another organization's interface and allocates the IP to it",
        breaks=(OTHER_ORGANIZATION_INTERFACE,))
class AllocatedToAnotherOrganizationsInterface(SeesEveryOrganization):
    leaky = "interface"

    def leaks(self, request: MockRequest) -> bool:
        return is_allocate_request(request)


@mutant("another-organizations-ip-readable", "GET ip_address finds another organization's IP for any token",
        breaks=(OTHER_ORGANIZATION_IP,))
class AnotherOrganizationsIPReadable(SeesEveryOrganization):
    def leaks(self, request: MockRequest) -> bool:
        return is_read_ip_request(request)


# Framework-wide faults (an API framework's authenticator or argument handling): every operation has them, allocate_ip and the
# support operations alike, so the preflight's probes meet them too.
class DefersUntilLookup(ReferenceMock):
    """Base: a check the gate makes is kept until the operation's first lookup, after every argument check."""

    def reset(self) -> None:
        super().reset()
        self.deferred: Callable[[], object] | None = None

    def run_deferred(self) -> None:
        """The kept check, once."""
        deferred, self.deferred = self.deferred, None
        if deferred is not None:
            deferred()

    def find_interface(self, value: Any) -> dict[str, Any]:
        self.run_deferred()
        return super().find_interface(value)

    def find_ip(self, key: str, value: Any) -> IPAddress:
        self.run_deferred()
        return super().find_ip(key, value)


@mutant("every-operation-arguments-before-authentication", "every operation checks its arguments before the token (the framework's"
        " order), so a bad body beats a missing token everywhere", breaks=(RATE_LIMIT_HEADERS, ORDER_OF_CHECKS))
class EveryOperationArgumentsBeforeAuthentication(DefersUntilLookup):
    def gate(self, request: MockRequest, headers: dict[str, str], scopes: tuple[str, ...] | None = None) -> Token:
        self.deferred = lambda: ReferenceMock.gate(self, request, headers, scopes)
        # No operation reads the caller gate returns; it is known once the gate has run.
        return Token("", ())


@mutant("every-operation-scope-after-arguments", "every operation checks the scope after its arguments (the framework's order), so a"
        " bad body beats a missing scope everywhere", breaks=(ORDER_OF_CHECKS,))
class EveryOperationScopeAfterArguments(DefersUntilLookup):
    def check_granted(self, token: Token, scopes: tuple[str, ...]) -> None:
        self.deferred = lambda: ReferenceMock.check_granted(self, token, scopes)


@mutant("every-operation-ignores-scopes", "no operation checks scopes (the framework's authenticator ignores them): every known token"
        " is served everywhere", breaks=(SCOPE_NOT_GRANTED, READ_ONLY_TOKEN_REFUSED))
class EveryOperationIgnoresScopes(ReferenceMock):
    def check_granted(self, token: Token, scopes: tuple[str, ...]) -> None:
        """Every token will do, on every operation."""

