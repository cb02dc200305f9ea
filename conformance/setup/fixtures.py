"""Target fixtures: the YAML file naming a target's test data, with ${VAR} read from the environment."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.setup.yamlfile import YamlProblem, kind, load_yaml, wrong_type

# The one supported form: a whole value `${VAR}` (no default, no text around it, no bare $VAR).
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What a shell or another tool would take for a reference: `$` before a brace or a name.
LOOKS_LIKE_REFERENCE = re.compile(r"\$[{A-Za-z_]")
CREDENTIAL_KEYS = ("valid", "without_scope", "network_restricted", "invalid_capabilities", "read_only", "other_organization")
TOP_LEVEL_KEYS = ("credentials", "network_interface", "other_network_interface", "ip_addresses", "rate_limit", "other_organization")
IP_KEYS = ("allocatable", "allocated_elsewhere", "invalid_for_interface")
OTHER_ORGANIZATION_KEYS = ("ip_address", "network_interface")
# Keys whose promises a team may opt out of by setting them to false (as rate_limit.provoke: false opts out of the 429): what a
# target cannot give (no second organization, no read-only token) is then a choice, not a gap --require-complete fails on.
OPT_OUTS = ("credentials.read_only", "other_organization")


class FixturesError(ValueError):
    """The target fixtures file cannot be used; the message names the problem and the fix."""


class MissingFixture(LookupError):
    """A scenario needs a fixture entry the file does not give; the plugin turns this into a skip naming the key."""

    def __init__(self, key: str, source: Path | None = None) -> None:
        super().__init__(f"needs {key} in the target fixtures" + (f" ({source})" if source is not None else ""))
        self.key = key


class UnusableFixture(MissingFixture):
    """A fixture entry is there but cannot serve (e.g. the other interface is on the same virtual machine); skips like a missing one."""

    def __init__(self, key: str, why: str) -> None:
        LookupError.__init__(self, f"needs {key} to be usable: {why}")
        self.key = key


def placeholder(key: str) -> str:
    """The variable a printed command names a value written inline by: its key in capitals (credentials.valid -> CREDENTIALS_VALID)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()


@dataclass(frozen=True)
class Reference:
    """How a printed command names one secret: the environment variable the fixtures read it from, or, for a value written
    inline in the file, a placeholder named after its key (to be set to that value by whoever runs the command)."""

    variable: str
    key: str
    inline: bool = False

    @property
    def shell(self) -> str:
        """The reference as a shell expands it inside double quotes."""
        return "${" + self.variable + "}"

    @classmethod
    def written_inline(cls, key: str) -> Reference:
        """The placeholder for a value written in the file itself."""
        return cls(placeholder(key), key, inline=True)


@dataclass(frozen=True)
class Credential:
    """How to present one identity: the headers to send (never printed), and the variable each header's secret is named by."""

    key: str
    headers: Mapping[str, str] = field(repr=False)
    # Header name -> how a printed command names its secret; a header not here is named by a placeholder after its key.
    references: Mapping[str, Reference] = field(default_factory=dict, repr=False, compare=False)
    # Given as a token string (sent as `Authorization: Bearer <token>`), not as a mapping of headers sent as given.
    is_bearer: bool = field(default=False, compare=False)

    def __repr__(self) -> str:
        return f"Credential({self.key!r}, headers=[redacted])"

    @classmethod
    def bearer(cls, key: str, token: str, reference: Reference | None = None) -> Credential:
        """A token sent as `Authorization: Bearer <token>`."""
        return cls(key, {"Authorization": f"Bearer {token}"}, {"Authorization": reference} if reference is not None else {}, is_bearer=True)

    def secrets(self) -> set[str]:
        """Every value that must never be written anywhere."""
        values = set(self.headers.values())
        values |= {value.split(" ", 1)[1] for value in self.headers.values() if " " in value}
        return {value for value in values if value}

    def reference(self, header: str) -> Reference:
        """How a printed command names this header's secret."""
        found = self.references.get(header)
        if found is not None:
            return found
        return Reference.written_inline(f"credentials.{self.key}" if self.is_bearer else f"credentials.{self.key}.headers.{header}")

    def secret_references(self) -> dict[str, Reference]:
        """Each secret value this credential sends -> how printed commands name it."""
        prefix = len("Bearer ") if self.is_bearer else 0
        return {value[prefix:]: self.reference(header) for header, value in self.headers.items() if value[prefix:]}

    def shell_headers(self) -> list[tuple[str, str]]:
        """The headers as a printed command sends them, each secret replaced by its variable: `Bearer ${KATAPULT_API_TOKEN}`."""
        return [(header, ("Bearer " if self.is_bearer else "") + self.reference(header).shell) for header in self.headers]


@dataclass(frozen=True)
class IPRef:
    """An IP address on the target, by id and by address."""

    id: str
    address: str


@dataclass(frozen=True)
class OtherOrganization:
    """Objects of a second organization: its IP and its interface, each None when the file does not name it."""

    ip_address: IPRef | None
    network_interface_id: str | None


@dataclass(frozen=True)
class TargetFixtures:
    """A target's test data, validated."""

    source: Path
    credentials: Mapping[str, Credential]
    network_interface_id: str
    other_network_interface_id: str | None
    allocatable: tuple[IPRef, ...]
    allocated_elsewhere: IPRef | None
    invalid_for_interface: IPRef | None
    # None when the file does not say: an explicit false opts the 429 out, an absent key leaves it not provoked.
    provoke_rate_limit: bool | None
    # (key, variable) of every entry left absent because its ${VARIABLE} is unset or empty, for doctor to name.
    unset: tuple[tuple[str, str], ...] = ()
    # Objects of a second organization, which credentials.valid does not belong to (None: not given, or opted out).
    other_organization: OtherOrganization | None = None
    # The keys of OPT_OUTS the file sets to false.
    opted_out: frozenset[str] = frozenset()

    def credential(self, key: str) -> Credential:
        """The named credential, or MissingFixture naming `credentials.<key>`."""
        try:
            return self.credentials[key]
        except KeyError:
            raise MissingFixture(f"credentials.{key}", self.source) from None

    def ip(self, key: str) -> IPRef:
        """`ip_addresses.<key>` (allocated_elsewhere, invalid_for_interface), or MissingFixture."""
        value = getattr(self, key)
        if value is None:
            raise MissingFixture(f"ip_addresses.{key}", self.source)
        assert isinstance(value, IPRef)
        return value

    def allocatable_ip(self, index: int = 0) -> IPRef:
        """The index-th allocatable IP, or MissingFixture naming how many are needed."""
        if len(self.allocatable) <= index:
            key = "ip_addresses.allocatable" if index == 0 else f"ip_addresses.allocatable[{index}] (at least {index + 1} entries)"
            raise MissingFixture(key, self.source)
        return self.allocatable[index]

    def other_interface(self) -> str:
        """A second interface id, or MissingFixture."""
        if self.other_network_interface_id is None:
            raise MissingFixture("other_network_interface.id", self.source)
        return self.other_network_interface_id

    def opt_out(self, key: str) -> str | None:
        """The setting that opts out of what needs `key` (e.g. `other_organization: false`), when the file sets it."""
        return f"{key}: false" if key in self.opted_out else None

    def foreign_ip(self) -> IPRef:
        """`other_organization.ip_address`, or MissingFixture."""
        ip = self.other_organization.ip_address if self.other_organization is not None else None
        if ip is None:
            raise MissingFixture("other_organization.ip_address", self.source)
        return ip

    def foreign_interface(self) -> str:
        """`other_organization.network_interface.id`, or MissingFixture."""
        interface = self.other_organization.network_interface_id if self.other_organization is not None else None
        if interface is None:
            raise MissingFixture("other_organization.network_interface", self.source)
        return interface

    def secrets(self) -> set[str]:
        """Every credential value in the file, to be redacted from all output."""
        return set().union(*(credential.secrets() for credential in self.credentials.values()))

    def known_ips(self) -> tuple[IPRef, ...]:
        """Every IP the file names."""
        others = (self.allocated_elsewhere, self.invalid_for_interface)
        return self.allocatable + tuple(ip for ip in others if ip is not None)


def expand(value: Any, where: str, environ: Mapping[str, str], unset: list[tuple[str, str]] | None = None) -> Any:
    """Replace a whole-value ${VAR} from the environment; one whose variable is unset or empty becomes None (noted in `unset`)."""
    if isinstance(value, str):
        reference = ENV_REFERENCE.fullmatch(value)
        if reference is None:
            if LOOKS_LIKE_REFERENCE.search(value):
                raise FixturesError(f"{where} is not a supported environment reference: write the whole value as ${{VAR}}"
                                    " (no default, no text around it, no bare $VAR)")
            return value
        if not environ.get(reference.group(1)):
            if unset is not None:
                unset.append((where, reference.group(1)))
            return None
        return environ[reference.group(1)]
    if isinstance(value, dict):
        return {key: expand(item, _join_key(where, str(key)), environ, unset) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, f"{where}[{index}]", environ, unset) for index, item in enumerate(value)]
    return value


def env_names(value: Any) -> list[str]:
    """The ${VAR} names a raw value refers to."""
    if isinstance(value, str):
        return ENV_REFERENCE.findall(value)
    if isinstance(value, dict):
        return [name for item in value.values() for name in env_names(item)]
    return []


def reference_in(raw: Any, key: str) -> Reference:
    """How printed commands name the secret a raw value gives: its ${VAR}, or a placeholder after the key for one written inline."""
    reference = ENV_REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
    return Reference(reference.group(1), key) if reference is not None else Reference.written_inline(key)


def _mapping(value: Any, where: str, allowed: tuple[str, ...], shown: bool = True) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FixturesError(f"{where or 'the file'} must be a mapping of keys, got {kind(value, shown)}")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise FixturesError(f"unknown key {_join_key(where, unknown[0])} (known keys: {', '.join(allowed)})")
    return value


def _join_key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _ip(value: Any, where: str) -> IPRef | None:
    if value is None:
        return None
    entry = _mapping(value, where, ("id", "address"))
    for key in ("id", "address"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise FixturesError(wrong_type(f"{where}.{key}", "a string", entry[key], text=True))
    if not isinstance(entry.get("id"), str) or not isinstance(entry.get("address"), str):
        raise FixturesError(f"{where} needs both id and address as strings, e.g. {{id: ip_..., address: 185.199.221.195}}")
    return IPRef(entry["id"], entry["address"])


def _credential(key: str, value: Any, raw: Any) -> Credential | None:
    if value is None or (value is False and f"credentials.{key}" in OPT_OUTS):
        return None
    if isinstance(value, str):
        return Credential.bearer(key, value, reference_in(raw, f"credentials.{key}")) if value else None
    if isinstance(value, dict) and set(value) == {"headers"} and isinstance(value["headers"], dict):
        for name, header in value["headers"].items():
            if not isinstance(name, str):
                raise FixturesError(wrong_type(f"a header name in credentials.{key}.headers", "text", name, text=True))
            if header is not None and not isinstance(header, str):
                raise FixturesError(wrong_type(f"credentials.{key}.headers.{name}", "a string", header, text=True, shown=False))
        headers = {name: header for name, header in value["headers"].items() if header}
        if len(headers) < len(value["headers"]):
            return None
        raw_headers = raw["headers"] if isinstance(raw, dict) and isinstance(raw.get("headers"), dict) else {}
        references = {name: reference_in(raw_headers.get(name), f"credentials.{key}.headers.{name}") for name in headers}
        return Credential(key, headers, references)
    # A credential's value is a secret: its type is named, never its value.
    opt_out = ", or false to opt out of its promises" if f"credentials.{key}" in OPT_OUTS else ""
    raise FixturesError(wrong_type(f"credentials.{key}", f"a token string or a mapping {{headers: {{Name: value}}}}{opt_out}", value, text=True,
                                   shown=False))


def load_target_fixtures(path: Path, environ: Mapping[str, str] | None = None) -> TargetFixtures:
    """Read and validate a target fixtures file; every problem is a FixturesError naming the file, the problem and the fix."""
    try:
        return _load(path, os.environ if environ is None else environ)
    except FixturesError as error:
        if str(path) in str(error):
            raise
        raise FixturesError(f"target fixtures {path}: {error}") from None


def _load(path: Path, environ: Mapping[str, str]) -> TargetFixtures:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FixturesError(f"cannot read target fixtures {path}: {error.strerror}; pass an existing file with --target-fixtures") from None
    try:
        raw = load_yaml(text)
    except YamlProblem as problem:
        raise FixturesError(f"target fixtures {path} {problem}") from None
    top = _mapping(raw, "", TOP_LEVEL_KEYS)
    raw_credentials = _mapping(top.get("credentials"), "credentials", CREDENTIAL_KEYS, shown=False)
    unset: list[tuple[str, str]] = []
    data = expand(top, "", environ, unset)
    credentials_data = _mapping(data.get("credentials"), "credentials", CREDENTIAL_KEYS)
    credentials = {}
    for key in CREDENTIAL_KEYS:
        credential = _credential(key, credentials_data.get(key), raw_credentials.get(key))
        if credential is not None:
            credentials[key] = credential
    if "valid" not in credentials:
        names = env_names(raw_credentials.get("valid"))
        fix = f"set {' and '.join(names)} in the environment" if names else "add credentials.valid: ${KATAPULT_API_TOKEN}"
        raise FixturesError(f"target fixtures {path} have no credentials.valid (a token with the ip_addresses scope); {fix}")
    interface = _mapping(data.get("network_interface"), "network_interface", ("id",))
    if interface.get("id") is not None and not isinstance(interface["id"], str):
        raise FixturesError(wrong_type("network_interface.id", "a string (an interface id like vmnet_...)", interface["id"], text=True))
    if not isinstance(interface.get("id"), str) or not interface["id"]:
        names = env_names(_mapping(top.get("network_interface"), "network_interface", ("id",)).get("id"))
        fix = f"; set {' and '.join(names)} in the environment" if names else ""
        raise FixturesError(f"target fixtures {path} need network_interface.id: an interface the suite may allocate IPs to{fix}")
    other = _mapping(data.get("other_network_interface"), "other_network_interface", ("id",))
    if other.get("id") is not None and not isinstance(other["id"], str):
        raise FixturesError(wrong_type("other_network_interface.id", "a string (an interface id like vmnet_...)", other["id"], text=True))
    ips = _mapping(data.get("ip_addresses"), "ip_addresses", IP_KEYS)
    allocatable_raw = ips.get("allocatable")
    if allocatable_raw is None:
        allocatable_raw = []
    if not isinstance(allocatable_raw, list):
        raise FixturesError(wrong_type("ip_addresses.allocatable", "a list of {id, address}", allocatable_raw))
    allocatable = tuple(ip for index, entry in enumerate(allocatable_raw) if (ip := _ip(entry, f"ip_addresses.allocatable[{index}]")))
    opted_out = frozenset(key for key in OPT_OUTS if _setting(data, key) is False)
    other_organization = None if "other_organization" in opted_out else _other_organization(data.get("other_organization"))
    rate_limit = _mapping(data.get("rate_limit"), "rate_limit", ("provoke",))
    provoke = rate_limit.get("provoke")
    if provoke is not None and not isinstance(provoke, bool):
        raise FixturesError(wrong_type("rate_limit.provoke", "true or false", provoke))
    return TargetFixtures(
        source=path,
        credentials=credentials,
        network_interface_id=interface["id"],
        other_network_interface_id=other.get("id") or None,
        allocatable=allocatable,
        allocated_elsewhere=_ip(ips.get("allocated_elsewhere"), "ip_addresses.allocated_elsewhere"),
        invalid_for_interface=_ip(ips.get("invalid_for_interface"), "ip_addresses.invalid_for_interface"),
        provoke_rate_limit=provoke,
        unset=tuple(unset),
        other_organization=other_organization,
        opted_out=opted_out,
    )


def _setting(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of the expanded file, or None."""
    value: Any = data
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _other_organization(value: Any) -> OtherOrganization | None:
    """`other_organization: {ip_address: {id, address}, network_interface: {id}}`; either part may be absent."""
    if value is not None and not isinstance(value, dict):
        raise FixturesError("other_organization must be a mapping {ip_address: {id, address}, network_interface: {id}},"
                            " or false to opt out of its promises")
    entry = _mapping(value, "other_organization", OTHER_ORGANIZATION_KEYS)
    interface = _mapping(entry.get("network_interface"), "other_organization.network_interface", ("id",))
    interface_id = interface.get("id")
    if interface_id is not None and not isinstance(interface_id, str):
        raise FixturesError("other_organization.network_interface.id must be a string, e.g. vmnet_...")
    ip = _ip(entry.get("ip_address"), "other_organization.ip_address")
    if ip is None and not interface_id:
        return None
    return OtherOrganization(ip, interface_id or None)
