"""Target fixtures: the YAML file naming a target's test data, with ${VAR} read from the environment."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The one supported form: a whole value `${VAR}` (no default, no text around it, no bare $VAR).
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What a shell or another tool would take for a reference: `$` before a brace or a name.
LOOKS_LIKE_REFERENCE = re.compile(r"\$[{A-Za-z_]")
CREDENTIAL_KEYS = ("valid", "without_scope", "network_restricted", "invalid_capabilities")
TOP_LEVEL_KEYS = ("credentials", "network_interface", "other_network_interface", "ip_addresses", "rate_limit")
IP_KEYS = ("allocatable", "allocated_elsewhere", "invalid_for_interface")


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


def _mapping(value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FixturesError(f"{where or 'the file'} must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise FixturesError(f"unknown key {_join_key(where, unknown[0])} (known keys: {', '.join(allowed)})")
    return value


def _join_key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _ip(value: Any, where: str) -> IPRef | None:
    if value is None:
        return None
    entry = _mapping(value, where, ("id", "address"))
    if not isinstance(entry.get("id"), str) or not isinstance(entry.get("address"), str):
        raise FixturesError(f"{where} needs both id and address as strings, e.g. {{id: ip_..., address: 185.199.221.195}}")
    return IPRef(entry["id"], entry["address"])


def _credential(key: str, value: Any, raw: Any) -> Credential | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Credential.bearer(key, value, reference_in(raw, f"credentials.{key}")) if value else None
    if isinstance(value, dict) and set(value) == {"headers"} and isinstance(value["headers"], dict):
        headers = {str(name): header for name, header in value["headers"].items() if header}
        if len(headers) < len(value["headers"]):
            return None
        if not all(isinstance(header, str) for header in headers.values()):
            raise FixturesError(f"credentials.{key}.headers values must be strings")
        raw_headers = raw["headers"] if isinstance(raw, dict) and isinstance(raw.get("headers"), dict) else {}
        references = {name: reference_in(raw_headers.get(name), f"credentials.{key}.headers.{name}") for name in headers}
        return Credential(key, headers, references)
    raise FixturesError(f"credentials.{key} must be a token string or a mapping {{headers: {{Name: value}}}}")


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
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise FixturesError(f"target fixtures {path} is not valid YAML{where}; fix the syntax") from None
    top = _mapping(raw, "", TOP_LEVEL_KEYS)
    raw_credentials = _mapping(top.get("credentials"), "credentials", CREDENTIAL_KEYS)
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
    if not isinstance(interface.get("id"), str) or not interface["id"]:
        names = env_names(_mapping(top.get("network_interface"), "network_interface", ("id",)).get("id"))
        fix = f"; set {' and '.join(names)} in the environment" if names else ""
        raise FixturesError(f"target fixtures {path} need network_interface.id: an interface the suite may allocate IPs to{fix}")
    other = _mapping(data.get("other_network_interface"), "other_network_interface", ("id",))
    ips = _mapping(data.get("ip_addresses"), "ip_addresses", IP_KEYS)
    allocatable_raw = ips.get("allocatable") or []
    if not isinstance(allocatable_raw, list):
        raise FixturesError("ip_addresses.allocatable must be a list of {id, address}")
    allocatable = tuple(ip for index, entry in enumerate(allocatable_raw) if (ip := _ip(entry, f"ip_addresses.allocatable[{index}]")))
    rate_limit = _mapping(data.get("rate_limit"), "rate_limit", ("provoke",))
    provoke = rate_limit.get("provoke")
    if provoke is not None and not isinstance(provoke, bool):
        raise FixturesError("rate_limit.provoke must be true or false")
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
    )
