"""The mock's world: tokens, interfaces, networks and IPs, loaded from fixtures/mock-world.yaml."""
from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.setup.paths import data_path

# libyaml's safe loader when PyYAML has it (a tenth of the pure-Python one's time), else that one: the same documents either way.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_WORLD = data_path("fixtures", "mock-world.yaml")
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


def load_world(path: Path = DEFAULT_WORLD) -> World:
    """Read a world file; an entry that names no organization belongs to the world's own (`organization`, else HOME_ORGANIZATION)."""
    raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    home = str(raw.get("organization") or HOME_ORGANIZATION)
    tokens = {
        entry["token"]: Token(
            token=entry["token"],
            scopes=tuple(entry.get("scopes", ())),
            allowed_networks=tuple(ipaddress.ip_network(n) for n in entry.get("allowed_networks", ())),
            organization=str(entry.get("organization") or home),
        )
        for entry in raw["tokens"]
    }
    return World(
        permitted=int(raw["rate_limit"]["permitted"]),
        window_seconds=float(raw["rate_limit"]["window_seconds"]),
        client_address=str(raw.get("client_address", "127.0.0.1")),
        tokens=tokens,
        capabilities_tokens=frozenset(raw.get("capabilities_tokens", ())),
        networks={n["id"]: dict(n) for n in raw["networks"]},
        interfaces={i["id"]: {**i, "organization": str(i.get("organization") or home)} for i in raw["network_interfaces"]},
        ips={ip["id"]: IPAddress(**{**ip, "organization": str(ip.get("organization") or home)}) for ip in raw["ip_addresses"]},
    )
