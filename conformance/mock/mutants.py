"""Miniature broken implementations: each mutant breaks one behaviour of the reference mock."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.mock.app import ApiError, MockRequest, ReferenceMock

MUTANTS: dict[str, type[ReferenceMock]] = {}


def mutant(name: str, description: str) -> Callable[[type[ReferenceMock]], type[ReferenceMock]]:
    """Register a mutant class under a stable name with a one-line description."""

    def register(cls: type[ReferenceMock]) -> type[ReferenceMock]:
        cls.name = name
        cls.description = description
        MUTANTS[name] = cls
        return cls

    return register


def mock_class(name: str | None) -> type[ReferenceMock]:
    """The faithful mock for None/"faithful", else the named mutant; unknown names are a clear error."""
    if name in (None, "", "faithful"):
        return ReferenceMock
    try:
        return MUTANTS[name]
    except KeyError:
        raise ValueError(f"unknown mutant {name!r}: choose one of {', '.join(sorted(MUTANTS))}") from None


@mutant("200-missing-mac-address", "the 200 body lacks the required mac_address field")
class MissingMacAddress(ReferenceMock):
    def render_interface(self, interface: dict[str, Any]) -> dict[str, Any]:
        body = super().render_interface(interface)
        del body["mac_address"]
        return body


@mutant("exclusivity-id-wins", "both ip_address lookup keys are accepted and id wins")
class ExclusivityIdWins(ReferenceMock):
    def lookup_argument(self, args: Any, name: str, keys: tuple[str, ...]) -> tuple[str, Any]:
        lookup = args.get(name)
        if name == "ip_address" and isinstance(lookup, dict) and lookup.get("id") and lookup.get("address"):
            return "id", lookup["id"]
        return super().lookup_argument(args, name, keys)


@mutant("missing-token-401", "a request without a token gets 401 instead of 400 missing_api_token")
class MissingToken401(ReferenceMock):
    def authenticate(self, request: MockRequest) -> Any:
        try:
            return super().authenticate(request)
        except ApiError as error:
            if error.code == "missing_api_token":
                error.status = 401
            raise
