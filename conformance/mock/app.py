"""The reference mock: a faithful, stateful implementation of allocate_ip and its two support operations.

Each step of the real server's order of checks is a small method, so a mutant (conformance.mock.mutants)
can break exactly one behaviour by overriding one method.
"""
from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.mock.world import IPAddress, Token, World, load_world, organization_of
from conformance.wire.paths import BASE_PATH

SCOPE = "ip_addresses"
# The support operations' scopes (published API schema): any one of a tuple will do, and a refusal names them all.
READ_IP_SCOPES = ("ip_addresses", "ip_addresses:read")
READ_INTERFACE_SCOPES = ("virtual_machines", "virtual_machines:read")
UNALLOCATE_SCOPES = (SCOPE,)
# The middle segment is a route parameter: it fills a body without virtual_machine_network_interface (see allocate_ip).
ALLOCATE_ROUTE = re.compile(r"^/virtual_machine_network_interfaces/(?P<segment>[^/]+)/allocate_ip$")
READ_INTERFACE_ROUTE = re.compile(r"^/virtual_machine_network_interfaces/[^/]+$")
READ_IP_ROUTE = re.compile(r"^/ip_addresses/[^/]+$")
JSON_CONTENT_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
UNALLOCATE_ROUTE = re.compile(r"^/ip_addresses/[^/]+/unallocate$")
IP_LOOKUP_KEYS = ("id", "address")
INTERFACE_LOOKUP_KEYS = ("id",)

DESCRIPTIONS = {
    "missing_api_token": "No API token was provided in the Authorization header. Ensure a token is provided prefixed with Bearer",
    "invalid_api_token": "The API token provided was not valid (it may not exist or have expired)",
    "unauthorized_network_for_api_token": "Network is not allowed to access the API with this API token",
    "invalid_capabilities_token": "The capabilities token provided was not valid (either not valid, expired or not signed by the correct key)",
    "scope_not_granted": "The scope required for this endpoint has not been granted to the authenticating identity",
    "rate_limit_reached": "You have reached the rate limit for this type of request",
    "service_unavailable": "The service is currently unavailable, please try again later",
    "invalid_argument": "The '{name}' argument is invalid",
    "missing_required_argument": "The '{name}' argument is required but has not been provided",
    "invalid_json_body": "The JSON body provided with this request is invalid",
    "virtual_machine_network_interface_not_found": "No network interface was found matching any of the criteria provided in the arguments",
    "ip_address_not_found": "No IP addresses were found matching any of the criteria provided in the arguments",
    "ip_already_allocated": "This IP address has already been allocated to another resource",
    "invalid_ip": "This IP address is not valid for this network interface.",
    "no_allocation": "This IP address is not allocated to anything",
    "route_not_found": "No route matches the requested method and path",
}
# The framework has no text for object_expected (nor array_expected): their issue_description is null on the wire.
ISSUE_DESCRIPTIONS: dict[str, str | None] = {
    "missing_lookup_value": "A lookup needs one of its values to be provided",
    "ambiguous_lookup_values": "Only one of the lookup's values may be provided",
    "object_expected": None,
    "invalid_scalar": "The value is not of the expected type",
}
ARGUMENT_IDS = {
    ("ip_address", "id"): "CoreAPI/ArgumentSets/IPAddressLookup/IdArgument",
    ("ip_address", "address"): "CoreAPI/ArgumentSets/IPAddressLookup/AddressArgument",
}


@dataclass
class MockRequest:
    """A request as the mock sees it, independent of how it arrived (in process or over a socket)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    client_address: str | None = None

    def header(self, name: str) -> str | None:
        """A header's value, case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass
class MockResponse:
    """What the mock answers; `hang` means the answer never comes, `drop` that the connection is closed without one."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False


class ApiError(Exception):
    """An error the API answers with, wrapped in {"error": ...} on the wire."""

    def __init__(self, status: int, code: str, detail: dict[str, Any] | None = None, **fmt: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail: dict[str, Any] = detail if detail is not None else {}
        # The framework's unhandled_exception has no description; errors without a text get null, as on the wire.
        text = DESCRIPTIONS.get(code)
        self.description = text.format(**fmt) if text is not None else None


def argument_error(path: list[str], issue: str) -> ApiError:
    """400 invalid_argument with the framework's detail shape."""
    name = path[-1]
    detail = {
        "path": path,
        "index": None,
        "issue": issue,
        "issue_description": ISSUE_DESCRIPTIONS[issue],
        "errors": [],
        "argument": {"id": ARGUMENT_IDS.get((path[0], name), f"allocate_ip/{name}"), "name": name, "description": None},
    }
    return ApiError(400, "invalid_argument", detail, name=path[0])


def query_arguments(query: Mapping[str, str]) -> dict[str, Any]:
    """`a[b]=v` query parameters as nested arguments: {"a": {"b": "v"}}; plain `a=v` as {"a": "v"}."""
    arguments: dict[str, Any] = {}
    for key, value in query.items():
        names = re.findall(r"[^\[\]]+", key)
        if not names:
            continue
        node = arguments
        for name in names[:-1]:
            if not isinstance(node.get(name), dict):
                node[name] = {}
            node = node[name]
        node[names[-1]] = value
    return arguments


def deep_merge(base: dict[str, Any], winner: dict[str, Any]) -> dict[str, Any]:
    """`winner` over `base`, object by object: the framework merges query arguments under the JSON body's."""
    merged = dict(base)
    for key, value in winner.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class VirtualClock:
    """A clock the in-process target advances instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class RateWindow:
    """One token's requests in the current rate-limit window."""

    started: float
    used: int = 0


class ReferenceMock:
    """The faithful implementation of the endpoint (the mutants' parent)."""

    name = "faithful"
    description = "the reference mock, faithful to the real endpoint"
    # The promises of the suite a mutant's deviation breaks, and only those: what a full run against it must fail.
    breaks: tuple[str, ...] = ()

    def __init__(self, world: World | None = None, clock: Callable[[], float] = time.monotonic, *,
                 request_ids: str = "uuid", body_generation: str = "current") -> None:
        self.pristine = world if world is not None else load_world()
        self.clock = clock
        # Deployment differences seen on the wire: 32-hex request ids (api.katapult.dev), 200s without virtual_network (before late 2024).
        self.request_ids = request_ids
        self.body_generation = body_generation
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to the world as loaded: allocations, rate-limit windows, maintenance off."""
        with self.lock:
            self.world = self.pristine.fresh()
            self.windows: dict[str, RateWindow] = {}
            self.serving: MockRequest | None = None
            # The token of the request being served, once authenticated: lookups see only its organization's objects.
            self.caller: Token | None = None
            self.maintenance = False

    # --- transport-independent entry point ------------------------------------------------------------------
    def handle(self, request: MockRequest) -> MockResponse:
        """Answer one request."""
        with self.lock:
            self.serving, self.caller = request, None
            headers: dict[str, str] = {"X-Request-Id": self.request_id()}
            try:
                status, body = self.dispatch(request, headers)
            except ApiError as error:
                status, body = error.status, self.error_body(error)
                headers["X-Api-Schema"] = "json-error"
            return self.respond(status, body, headers)

    def request_id(self) -> str:
        """A UUID, as production sends; 32 hex characters, as the one non-production deployment on record did."""
        return uuid.uuid4().hex if self.request_ids == "hex32" else str(uuid.uuid4())

    def dispatch(self, request: MockRequest, headers: dict[str, str]) -> tuple[int, Any]:
        """Route to an operation (an unknown route is refused before authentication); every operation authenticates first."""
        path = request.path[len(BASE_PATH):] if request.path.startswith(BASE_PATH + "/") else None
        if path is not None and request.method == "POST" and ALLOCATE_ROUTE.match(path):
            return 200, self.allocate_ip(request, headers)
        if path is not None and request.method == "GET" and READ_INTERFACE_ROUTE.match(path):
            return 200, self.read_interface(request, headers)
        if path is not None and request.method == "GET" and READ_IP_ROUTE.match(path):
            return 200, self.read_ip(request, headers)
        if path is not None and request.method == "POST" and UNALLOCATE_ROUTE.match(path):
            return 200, self.unallocate_ip(request, headers)
        raise ApiError(404, "route_not_found")

    def respond(self, status: int, body: Any, headers: dict[str, str]) -> MockResponse:
        """Serialise a JSON answer."""
        headers["Content-Type"] = "application/json"
        return MockResponse(status, json.dumps(body).encode(), headers)

    def error_body(self, error: ApiError) -> dict[str, Any]:
        """The wire's error envelope."""
        return {"error": {"code": error.code, "description": error.description, "detail": error.detail}}

    # --- step 1: authentication, rate limit, maintenance ---------------------------------------------------
    def bearer_token(self, request: MockRequest) -> str | None:
        """The token from `Authorization: Bearer <token>`, or None."""
        value = request.header("Authorization")
        if value is None:
            return None
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def authenticate(self, request: MockRequest) -> Token:
        """Identify the caller, in the order the real authenticator does."""
        token_value = self.bearer_token(request)
        if token_value is None:
            raise ApiError(400, "missing_api_token")
        if token_value in self.world.capabilities_tokens:
            raise ApiError(403, "invalid_capabilities_token")
        token = self.world.tokens.get(token_value)
        if token is None:
            raise ApiError(403, "invalid_api_token", {"details": None})
        client = request.client_address or self.world.client_address
        if token.allowed_networks and not self.network_allowed(token, client):
            raise ApiError(403, "unauthorized_network_for_api_token", {"ip_address": client})
        return token

    def network_allowed(self, token: Token, client: str) -> bool:
        """Whether the caller's address is inside one of the token's networks."""
        address = ipaddress.ip_address(client)
        return any(address in network for network in token.allowed_networks)

    def count_request(self, token: Token, headers: dict[str, str]) -> None:
        """Count the request against the token's window; 429 once it is used up."""
        now = self.clock()
        window = self.windows.get(token.token)
        if window is None or now - window.started >= self.world.window_seconds:
            window = self.windows[token.token] = RateWindow(started=now)
        window.used += 1
        headers["X-RateLimit-Permitted"] = str(self.world.permitted)
        headers["X-RateLimit-Remaining"] = str(max(self.world.permitted - window.used, 0))
        if window.used > self.world.permitted:
            raise ApiError(429, "rate_limit_reached", {"total_permitted": self.world.permitted})

    def check_maintenance(self) -> None:
        """503 while the maintenance switch is on."""
        if self.maintenance:
            raise ApiError(503, "service_unavailable")

    def check_scope(self, token: Token) -> None:
        """allocate_ip's scope: 403 unless the token holds ip_addresses."""
        self.check_granted(token, (SCOPE,))

    def check_granted(self, token: Token, scopes: tuple[str, ...]) -> None:
        """A support operation's scope: 403 unless the token holds one of `scopes`, naming them all."""
        if not set(scopes) & set(token.scopes):
            raise ApiError(403, "scope_not_granted", {"scopes": list(scopes)})

    def gate(self, request: MockRequest, headers: dict[str, str], scopes: tuple[str, ...] | None = None) -> Token:
        """Everything before the arguments: authentication, rate limit, maintenance, scope (allocate_ip's unless `scopes` are given)."""
        # The support operations check their scopes apart from check_scope: a mutant of allocate_ip's scope check leaves them be.
        token = self.caller = self.authenticate(request)
        self.count_request(token, headers)
        self.check_maintenance()
        if scopes is None:
            self.check_scope(token)
        else:
            self.check_granted(token, scopes)
        return token

    # --- step 2: arguments ---------------------------------------------------------------------------------
    def parse_body(self, request: MockRequest) -> dict[str, Any]:
        """The JSON body's arguments: read only as application/json; empty, null or not an object means none."""
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if not JSON_CONTENT_TYPE.match(content_type) or not request.body.strip():
            return {}
        try:
            # Like the real parser: bytes are not checked to be UTF-8, so invalid UTF-8 inside a JSON string goes on to the
            # lookups (and matches nothing), while bytes that are no JSON at all are invalid_json_body.
            parsed = json.loads(request.body.decode("utf-8", errors="surrogateescape"))
        except ValueError as error:
            raise ApiError(400, "invalid_json_body", {"details": str(error)}) from None
        return parsed if isinstance(parsed, dict) else {}

    def arguments(self, request: MockRequest) -> dict[str, Any]:
        """Query-string arguments deep-merged with the JSON body's; the body wins."""
        return deep_merge(query_arguments(request.query), self.parse_body(request))

    def lookup_argument(self, args: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        """Validate a lookup argument; return the key it looks up by and its value (possibly None)."""
        if args.get(name) is None:
            detail = {"path": [name], "argument": {"name": name, "description": None}}
            raise ApiError(400, "missing_required_argument", detail, name=name)
        lookup = args[name]
        if not isinstance(lookup, dict):
            raise argument_error([name], "object_expected")
        for key in keys:
            value = lookup.get(key)
            if key in lookup and value is not None and not isinstance(value, str):
                raise argument_error([name, key], "invalid_scalar")
        present = [key for key in keys if key in lookup]
        if not present:
            raise argument_error([name], "missing_lookup_value")
        given = [key for key in present if lookup[key] is not None]
        if len(given) > 1:
            raise argument_error([name], "ambiguous_lookup_values")
        key = given[0] if given else present[0]
        return key, lookup[key]

    # --- step 3: the operations ----------------------------------------------------------------------------
    def visible(self, organization: str) -> bool:
        """Whether the caller may see an object of this organization: a token sees only its own organization's."""
        return self.caller is None or self.caller.organization == organization

    def find_interface(self, value: Any) -> dict[str, Any]:
        """The interface by id, among the caller's organization's, or 404."""
        interface = self.world.interfaces.get(value) if isinstance(value, str) else None
        if interface is None or not self.visible(organization_of(interface)):
            raise ApiError(404, "virtual_machine_network_interface_not_found")
        return interface

    def find_ip(self, key: str, value: Any) -> IPAddress:
        """The IP by id or address, among the caller's organization's, or 404 (another organization's is not found, by either)."""
        ip_id = value if key == "id" else self.world.ips_by_address.get(value) if isinstance(value, str) else None
        ip = self.world.ips.get(ip_id) if isinstance(ip_id, str) else None
        if ip is None or not self.visible(ip.organization):
            raise ApiError(404, "ip_address_not_found")
        return ip

    def check_allocatable(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        """422 if another resource holds the IP or it is not on the interface's network."""
        if ip.allocated_to is not None and ip.allocated_to != interface["id"]:
            raise ApiError(422, "ip_already_allocated")
        if ip.network != interface["network"]:
            raise ApiError(422, "invalid_ip")

    def allocate(self, ip: IPAddress, interface: dict[str, Any]) -> None:
        """Give the IP to the interface."""
        ip.allocated_to = interface["id"]

    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        """The 200 body's interface, as the wire carries it (without virtual_network in the pre-2024 generation)."""
        network = self.world.networks.get(interface["network"])
        rendered = {
            "id": interface["id"],
            "virtual_machine": dict(interface["virtual_machine"]),
            "name": interface["name"],
            "network": {"id": network["id"], "name": network["name"]} if network else None,
            "virtual_network": dict(interface["virtual_network"]) if interface.get("virtual_network") else None,
            "mac_address": interface["mac_address"],
            "state": interface["state"],
            "ip_addresses": [
                {"id": ip.id, "address": ip.address}
                for ip in self.world.ips.values()
                if ip.allocated_to == interface["id"]
            ],
        }
        if self.body_generation == "legacy":
            del rendered["virtual_network"]
        return rendered

    def holder(self, ip: IPAddress) -> dict[str, Any] | None:
        """Who holds the IP as the wire names it: the virtual machine of the interface it was allocated through."""
        interface = self.world.interfaces.get(ip.allocated_to) if ip.allocated_to else None
        if interface is None:
            return None
        return {"type": "VirtualMachine", "value": dict(interface["virtual_machine"])}

    def with_interface_from_path(self, request: MockRequest, args: dict[str, Any]) -> dict[str, Any]:
        """A body without the interface key at all gets it from the path's route parameter (an explicit null does not)."""
        if "virtual_machine_network_interface" in args:
            return args
        match = ALLOCATE_ROUTE.match(request.path[len(BASE_PATH):])
        return {**args, "virtual_machine_network_interface": {"id": match["segment"] if match else None}}

    def allocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        """POST .../allocate_ip."""
        self.gate(request, headers)
        args = self.with_interface_from_path(request, self.arguments(request))
        _, interface_id = self.lookup_argument(args, "virtual_machine_network_interface", INTERFACE_LOOKUP_KEYS)
        ip_key, ip_value = self.lookup_argument(args, "ip_address", IP_LOOKUP_KEYS)
        interface = self.find_interface(interface_id)
        ip = self.find_ip(ip_key, ip_value)
        self.check_allocatable(ip, interface)
        self.allocate(ip, interface)
        return {"virtual_machine_network_interface": self.render_interface(interface)}

    def read_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        """GET /ip_addresses/ip_address?ip_address[id]=... (support operation)."""
        self.gate(request, headers, READ_IP_SCOPES)
        key, value = self.lookup_argument(self.arguments(request), "ip_address", IP_LOOKUP_KEYS)
        ip = self.find_ip(key, value)
        allocation = self.holder(ip)
        ip_body = {
            "id": ip.id,
            "address": ip.address,
            "network": {"id": ip.network},
            "allocation_id": allocation["value"]["id"] if allocation else None,
            "allocation_type": allocation["type"] if allocation else None,
        }
        return {"ip_address": ip_body, "allocation": allocation}

    def read_interface(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        """GET /virtual_machine_network_interfaces/virtual_machine_network_interface?virtual_machine_network_interface[id]=... (support)."""
        self.gate(request, headers, READ_INTERFACE_SCOPES)
        _, value = self.lookup_argument(self.arguments(request), "virtual_machine_network_interface", INTERFACE_LOOKUP_KEYS)
        return {"virtual_machine_network_interface": self.render_read_interface(self.find_interface(value))}

    def render_read_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        """The interface read's body: allocate_ip's fields plus speed_profile (field spec in the published API schema)."""
        profile = interface.get("speed_profile")
        return {**self.render_interface(interface), "speed_profile": dict(profile) if profile else None}

    def unallocate_ip(self, request: MockRequest, headers: dict[str, str]) -> dict[str, Any]:
        """POST /ip_addresses/ip_address/unallocate (support operation)."""
        self.gate(request, headers, UNALLOCATE_SCOPES)
        key, value = self.lookup_argument(self.arguments(request), "ip_address", IP_LOOKUP_KEYS)
        ip = self.find_ip(key, value)
        if ip.allocated_to is None:
            raise ApiError(422, "no_allocation")
        ip.allocated_to = None
        return {}
