"""Request generation from the fragment, built once: positive and negative bodies, fed with the target's real ids.

The request body schema is read from spec/allocate_ip.yaml and compiled into hypothesis strategies; string leaves
draw from the target fixtures' ids and addresses as often as from generated text, so generation reaches the
lookup and allocation logic (200, 404, 422) instead of ending every request in a 404.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conformance.contract.checks import resolved
from conformance.setup.fixtures import TargetFixtures

BODY_SCHEMA_REF = "#/components/schemas/AllocateIPRequest"
IDENTITIES = ("valid", "none", "random", "without_scope", "non_bearer")
NOT_JSON = st.sampled_from([b"", b"{", b"not json", b'{"ip_address": }', b"\xff\xfe", b"[1, 2", b"null"])
SCALAR_MISTAKES: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2), st.just({}))
TEXT = st.text(max_size=24)


@dataclass(frozen=True)
class GeneratedRequest:
    """One generated request: who sends it (by credential name, never its value) and the body."""

    identity: str
    body: Any = None
    raw: bytes | None = None

    def describe(self) -> str:
        """One line for logs and failure messages."""
        shown = self.raw if self.raw is not None else json.dumps(self.body)
        return f"as {self.identity}: {shown!r}"


@dataclass(frozen=True)
class KnownValues:
    """The target's real values that generated string leaves draw from, by JSON path of the leaf."""

    by_path: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def from_fixtures(cls, fixtures: TargetFixtures) -> KnownValues:
        """Interface ids, IP ids and addresses the target fixtures name."""
        ips = fixtures.known_ips()
        interfaces = [fixtures.network_interface_id]
        if fixtures.other_network_interface_id:
            interfaces.append(fixtures.other_network_interface_id)
        return cls({
            "virtual_machine_network_interface.id": interfaces,
            "ip_address.id": [ip.id for ip in ips],
            "ip_address.address": [ip.address for ip in ips],
        })

    def strings(self, path: str) -> st.SearchStrategy[str]:
        """Known values for this leaf three times in four, generated text otherwise."""
        known = self.by_path.get(path)
        if not known:
            return TEXT
        real = st.sampled_from(list(known))
        return st.sampled_from((True, True, True, False)).flatmap(lambda use_real: real if use_real else TEXT)


def resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local $ref in the fragment (one resolver, conformance.contract.checks')."""
    return resolved(dict(schema))


def body_schema() -> Mapping[str, Any]:
    """The request body schema of the operation under test."""
    return resolve({"$ref": BODY_SCHEMA_REF})


def _alternatives(schema: Mapping[str, Any]) -> list[list[str]]:
    """The key sets a oneOf of `required` lists allows (exclusive lookups); one set of all required keys otherwise."""
    branches = schema.get("oneOf")
    if branches:
        return [list(resolve(branch).get("required", [])) for branch in branches]
    return [list(schema.get("required", []))]


def valid_value(schema: Mapping[str, Any], path: str, known: KnownValues) -> st.SearchStrategy[Any]:
    """A strategy for values valid under the schema (the subset of JSON Schema the fragment's request uses)."""
    schema = resolve(schema)
    if "const" in schema:
        return st.just(schema["const"])
    if schema.get("type") == "string":
        return known.strings(path)
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        options = []
        for keys in _alternatives(schema):
            required = {**{key: valid_value(properties[key], _join(path, key), known) for key in schema.get("required", [])},
                        **{key: valid_value(properties[key], _join(path, key), known) for key in keys}}
            options.append(st.fixed_dictionaries(required))
        return st.one_of(options)
    raise NotImplementedError(f"no generator for schema at {path or '(body)'}: {dict(schema)}")


def invalid_value(schema: Mapping[str, Any], path: str, known: KnownValues) -> st.SearchStrategy[Any]:
    """A strategy for values the schema rejects, one mistake at a time, somewhere in the tree."""
    schema = resolve(schema)
    if schema.get("type") == "string":
        return SCALAR_MISTAKES
    if schema.get("type") != "object":
        return st.nothing()
    properties = schema.get("properties", {})
    valid = valid_value(schema, path, known)
    mistakes: list[st.SearchStrategy[Any]] = [st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2), st.none())]
    for key in schema.get("required", []):
        mistakes.append(valid.map(_without(key)))
    for key, child in properties.items():
        child_invalid = invalid_value(child, _join(path, key), known)
        mistakes.append(st.tuples(valid, child_invalid).map(_replacing(key)))
    if len(_alternatives(schema)) > 1:
        every_key = st.fixed_dictionaries({key: valid_value(properties[key], _join(path, key), known) for key in properties})
        mistakes += [every_key, st.just({})]
    if schema.get("additionalProperties") is False:
        mistakes.append(st.tuples(valid, TEXT.filter(lambda k: k not in properties), TEXT).map(lambda t: {**t[0], t[1]: t[2]}))
    return st.one_of(mistakes)


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda value: {k: v for k, v in value.items() if k != key}


def _replacing(key: str) -> Callable[[tuple[dict[str, Any], Any]], dict[str, Any]]:
    return lambda pair: {**pair[0], key: pair[1]}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def positive_bodies(known: KnownValues) -> st.SearchStrategy[Any]:
    """Bodies valid under the fragment."""
    return valid_value(body_schema(), "", known)


def negative_bodies(known: KnownValues) -> st.SearchStrategy[Any]:
    """Bodies the fragment rejects."""
    return invalid_value(body_schema(), "", known)


def body_classes(known: KnownValues) -> tuple[st.SearchStrategy[GeneratedRequest], ...]:
    """The three classes of body, as the valid identity would send them: valid under the fragment, invalid, not JSON at all."""
    return (positive_bodies(known).map(lambda body: GeneratedRequest("valid", body)),
            negative_bodies(known).map(lambda body: GeneratedRequest("valid", body)),
            NOT_JSON.map(lambda raw: GeneratedRequest("valid", raw=raw)))


def any_body(known: KnownValues) -> st.SearchStrategy[GeneratedRequest]:
    """Valid, invalid, or not JSON at all, as the valid identity would send it."""
    positive, negative, not_json = body_classes(known)
    # hypothesis' one_of does not weight repeated branches, so the mix is drawn explicitly: 6 positive, 3 negative, 1 not JSON.
    return st.sampled_from((positive,) * 6 + (negative,) * 3 + (not_json,)).flatmap(lambda chosen: chosen)


def requests(known: KnownValues, identities: Sequence[str] = IDENTITIES) -> st.SearchStrategy[GeneratedRequest]:
    """Any request: mostly the valid identity (so arguments are reached), sometimes another one."""
    others = [identity for identity in identities if identity != "valid"]
    identity = st.sampled_from(["valid"] * 2 * len(others) + others) if "valid" in identities else st.sampled_from(others)
    return st.tuples(identity, any_body(known)).map(lambda pair: GeneratedRequest(pair[0], pair[1].body, pair[1].raw))


def ambiguous_lookup_classes(known: KnownValues) -> tuple[st.SearchStrategy[dict[str, Any]], ...]:
    """ip_address lookups with two or more non-null values: alone, and beside an unknown key."""
    lookup_schema = resolve(body_schema()["properties"]["ip_address"])
    keys = list(lookup_schema["properties"])
    values = st.fixed_dictionaries({key: known.strings(f"ip_address.{key}") for key in keys})
    extra = st.dictionaries(TEXT.filter(lambda k: k not in keys), TEXT, min_size=1, max_size=1)
    return values, st.tuples(values, extra).map(lambda pair: {**pair[1], **pair[0]})


def valueless_lookup_classes(known: KnownValues) -> tuple[st.SearchStrategy[dict[str, Any]], ...]:
    """ip_address lookups that name none of the lookup's keys: {}, and only unknown keys."""
    keys = set(resolve(body_schema()["properties"]["ip_address"])["properties"])
    unknown = st.dictionaries(TEXT.filter(lambda k: k not in keys), st.one_of(TEXT, st.none(), st.integers()), min_size=1, max_size=3)
    return st.just({}), unknown
