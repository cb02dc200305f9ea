"""The mock's world: tokens, interfaces, networks and IPs, loaded from fixtures/mock-world.yaml."""
from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.setup.paths import data_path
from conformance.setup.yamlfile import YamlProblem, load_yaml, wrong_type

DEFAULT_WORLD = data_path("fixtures", "mock-world.yaml")
REQUIRED = object()
IP_KEYS = ("id", "address", "network", "allocated_to", "organization")
# The organization of every token, interface and IP that names none: a world file from before organizations has only this one.
HOME_ORGANIZATION = "org_mockHome00000001"


@dataclass(frozen=True)
class Token:
    """An API token the mock knows."""

    token: str
    scopes: tuple[str, ...]
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # A token sees only its organization's interfaces and IPs.
    organization: str = HOME_ORGANIZATION


@dataclass
class IPAddress:
    """An IP address and the interface holding it, if any."""

    id: str
    address: str
    network: str
    allocated_to: str | None
    organization: str = HOME_ORGANIZATION


@dataclass
class World:
    """Everything the mock serves; `fresh()` gives an independent copy to mutate."""

    permitted: int
    window_seconds: float
    client_address: str
    tokens: dict[str, Token]
    capabilities_tokens: frozenset[str]
    networks: dict[str, dict[str, Any]]
    interfaces: dict[str, dict[str, Any]]
    ips: dict[str, IPAddress]
    ips_by_address: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ips_by_address = {ip.address: ip.id for ip in self.ips.values()}

    def fresh(self) -> World:
        """A deep copy whose allocations can change without touching this one."""
        return copy.deepcopy(self)


def organization_of(entry: dict[str, Any]) -> str:
    """The organization an interface (as the world holds it) belongs to."""
    return str(entry.get("organization") or HOME_ORGANIZATION)


class WorldError(ValueError):
    """A world file that cannot be used; the message names the file, the key and what is wrong."""


def load_world(path: Path = DEFAULT_WORLD) -> World:
    """Read a world file; WorldError naming the file and the key for anything unreadable or of the wrong type."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise WorldError(f"cannot read the mock world {path}: {reason}") from None
    try:
        return world_of(load_yaml(text))
    except (YamlProblem, WorldError) as problem:
        raise WorldError(f"the mock world {path} {problem}" if isinstance(problem, YamlProblem) else f"the mock world {path}: {problem}") from None


def _get(mapping: dict[str, Any], key: str, where: str, types: type | tuple[type, ...], expected: str, default: Any = REQUIRED) -> Any:
    """mapping[key], of one of `types` (a bool is no number), or WorldError naming the key; absent or null is `default` when given."""
    name = f"{where}.{key}" if where else key
    value = mapping.get(key)
    if value is None:
        if default is REQUIRED:
            raise WorldError(f"{name} is missing (it must be {expected})")
        return default
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise WorldError(wrong_type(name, expected, value, text=str in allowed))
    return value


def _entries(mapping: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """The mappings listed under the top-level `key` (required), each with the name messages give it (`tokens[0]`)."""
    items = _get(mapping, key, "", list, "a list")
    named = []
    for index, item in enumerate(items):
        name = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise WorldError(wrong_type(name, "a mapping", item))
        named.append((name, item))
    return named


def _strings(mapping: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _get(mapping, key, where, list, "a list of strings", default=[])
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise WorldError(wrong_type(f"{where + '.' if where else ''}{key}[{index}]", "a string", item, text=True))
    return tuple(items)


def _token(entry: dict[str, Any], where: str, home: str) -> Token:
    networks = []
    for index, network in enumerate(_strings(entry, "allowed_networks", where)):
        try:
            networks.append(ipaddress.ip_network(network))
        except ValueError as error:
            raise WorldError(f"{where}.allowed_networks[{index}] is not a network like 203.0.113.0/24 ({error})") from None
    return Token(token=_get(entry, "token", where, str, "a string"), scopes=_strings(entry, "scopes", where), allowed_networks=tuple(networks),
                 organization=_get(entry, "organization", where, str, "an organization id", default=home))


def _interface(entry: dict[str, Any], where: str, home: str) -> dict[str, Any]:
    for key in ("id", "name", "network", "mac_address", "state"):
        _get(entry, key, where, str, "a string")
    for key in ("virtual_machine", "virtual_network", "speed_profile"):
        _get(entry, key, where, dict, "a mapping", default=None if key != "virtual_machine" else REQUIRED)
    _get(entry["virtual_machine"], "id", f"{where}.virtual_machine", str, "a string")
    return {**entry, "organization": _get(entry, "organization", where, str, "an organization id", default=home)}


def _ip(entry: dict[str, Any], where: str, home: str) -> IPAddress:
    unknown = sorted(str(key) for key in entry if key not in IP_KEYS)
    if unknown:
        raise WorldError(f"{where} has unknown key {unknown[0]!r} (an IP is exactly {', '.join(IP_KEYS)})")
    values = {key: _get(entry, key, where, str, "a string") for key in ("id", "address", "network")}
    return IPAddress(**values, allocated_to=_get(entry, "allocated_to", where, str, "an interface id or null", default=None),
                     organization=_get(entry, "organization", where, str, "an organization id", default=home))


def world_of(raw: Any) -> World:
    """The world a parsed world file describes; every value type-checked, WorldError naming the key."""
    if not isinstance(raw, dict):
        raise WorldError(wrong_type("the file", "a mapping of keys", raw))
    rate_limit = _get(raw, "rate_limit", "", dict, "a mapping {permitted, window_seconds}")
    permitted = _get(rate_limit, "permitted", "rate_limit", int, "a whole number of requests")
    window = _get(rate_limit, "window_seconds", "rate_limit", (int, float), "a number of seconds")
    if permitted < 1 or window <= 0:
        raise WorldError("rate_limit.permitted must be at least 1 and rate_limit.window_seconds more than 0")
    # An entry that names no organization belongs to the world's own (`organization`, else HOME_ORGANIZATION).
    home = _get(raw, "organization", "", str, "an organization id", default=HOME_ORGANIZATION)
    networks = {}
    for where, entry in _entries(raw, "networks"):
        _get(entry, "name", where, str, "a string")
        networks[_get(entry, "id", where, str, "a string")] = dict(entry)
    return World(
        permitted=permitted,
        window_seconds=float(window),
        client_address=_get(raw, "client_address", "", str, "an IP address", default="127.0.0.1"),
        tokens={token.token: token for token in (_token(entry, where, home) for where, entry in _entries(raw, "tokens"))},
        capabilities_tokens=frozenset(_strings(raw, "capabilities_tokens", "")),
        networks=networks,
        interfaces={entry["id"]: _interface(entry, where, home) for where, entry in _entries(raw, "network_interfaces")},
        ips={ip.id: ip for ip in (_ip(entry, where, home) for where, entry in _entries(raw, "ip_addresses"))},
    )
