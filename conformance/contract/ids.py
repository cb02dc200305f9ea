"""Every promise id as a name the type checker knows: the only place the package spells one (tests/test_layout.py holds it).

The values are the ids users' `@pytest.mark.promise("…")` markers, baselines and reports key on: never change one. They are
plain strings at run time (a NewType), so they pickle, travel between xdist processes and print exactly as before. This module
imports nothing of the package, so the mock's mutants may name what they break with it; the catalogue of what each promise says
is conformance.contract.promises.PROMISES, which lists these ids one to one.
"""
from __future__ import annotations

from typing import Final, NewType

PromiseId = NewType("PromiseId", str)

SHAPE_200: Final = PromiseId("200 shape")
SEMANTICS_200: Final = PromiseId("200 semantics")
MISSING_API_TOKEN: Final = PromiseId("400 missing_api_token")
INVALID_API_TOKEN: Final = PromiseId("403 invalid_api_token")
SCOPE_NOT_GRANTED: Final = PromiseId("403 scope_not_granted")
UNAUTHORIZED_NETWORK: Final = PromiseId("403 unauthorized_network_for_api_token")
INVALID_CAPABILITIES_TOKEN: Final = PromiseId("403 invalid_capabilities_token")
READ_ONLY_TOKEN_REFUSED: Final = PromiseId("read-only token refused")
INTERFACE_NOT_FOUND: Final = PromiseId("404 virtual_machine_network_interface_not_found")
IP_ADDRESS_NOT_FOUND: Final = PromiseId("404 ip_address_not_found")
OTHER_ORGANIZATION_IP: Final = PromiseId("another organization's IP not found")
OTHER_ORGANIZATION_INTERFACE: Final = PromiseId("another organization's interface not found")
IP_ALREADY_ALLOCATED: Final = PromiseId("422 ip_already_allocated")
INVALID_IP: Final = PromiseId("422 invalid_ip")
RATE_LIMIT_REACHED: Final = PromiseId("429 rate_limit_reached")
SERVICE_UNAVAILABLE: Final = PromiseId("503 service_unavailable")
MUTUAL_EXCLUSIVITY: Final = PromiseId("mutual exclusivity")
ARGUMENT_ERRORS: Final = PromiseId("400 argument errors")
INTERFACE_FROM_PATH: Final = PromiseId("interface from the path")
QUERY_STRING_ARGUMENTS: Final = PromiseId("query-string arguments")
RESPONSE_SHAPE: Final = PromiseId("response shape")
REQUEST_ID_HEADER: Final = PromiseId("X-Request-Id on every response")
API_SCHEMA_HEADER: Final = PromiseId("X-Api-Schema on errors")
RATE_LIMIT_HEADERS: Final = PromiseId("rate-limit headers")
NO_SERVER_ERRORS: Final = PromiseId("no server errors")
MALFORMED_BYTES: Final = PromiseId("malformed bytes never crash the server")
NO_ECHOED_CREDENTIAL: Final = PromiseId("no credential echoed")
ORDER_OF_CHECKS: Final = PromiseId("order of checks")
NO_SIDE_EFFECTS: Final = PromiseId("no side effects")
CONCURRENCY: Final = PromiseId("concurrency")
CLEANUP: Final = PromiseId("cleanup")
# Judged only by `replay`, on other endpoints' errors.
ERROR_ENVELOPE: Final = PromiseId("error envelope")

ALL: Final = (SHAPE_200, SEMANTICS_200, MISSING_API_TOKEN, INVALID_API_TOKEN, SCOPE_NOT_GRANTED, UNAUTHORIZED_NETWORK,
              INVALID_CAPABILITIES_TOKEN, READ_ONLY_TOKEN_REFUSED, INTERFACE_NOT_FOUND, IP_ADDRESS_NOT_FOUND, OTHER_ORGANIZATION_IP,
              OTHER_ORGANIZATION_INTERFACE, IP_ALREADY_ALLOCATED, INVALID_IP, RATE_LIMIT_REACHED, SERVICE_UNAVAILABLE, MUTUAL_EXCLUSIVITY,
              ARGUMENT_ERRORS, INTERFACE_FROM_PATH, QUERY_STRING_ARGUMENTS, RESPONSE_SHAPE, REQUEST_ID_HEADER, API_SCHEMA_HEADER,
              RATE_LIMIT_HEADERS, NO_SERVER_ERRORS, MALFORMED_BYTES, NO_ECHOED_CREDENTIAL, ORDER_OF_CHECKS, NO_SIDE_EFFECTS, CONCURRENCY,
              CLEANUP, ERROR_ENVELOPE)
