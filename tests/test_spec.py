"""The spec fragment: valid OpenAPI, accepts what the real API sent, and strict where the published document is loose."""
from __future__ import annotations

import copy
import datetime
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import schemathesis
import yaml
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.readers import read_from_filename

from conformance.contract.checks import conforms_to_fragment
from conformance.setup.paths import data_path
from conformance.wire.paths import ALLOCATE_PATH

SPEC_FILES = sorted(path for path in data_path("spec").iterdir() if path.suffix in (".yaml", ".yml", ".json"))
FRAGMENT = data_path("spec", "allocate_ip.yaml")
PUBLISHED = data_path("fixtures", "published-openapi.json")
RECORDED = data_path("fixtures", "recorded", "katapult-production-interactions.json")
RECORDED_ALLOCATE = re.compile(r"/virtual_machine_network_interfaces/[^/]+/allocate_ip$")
PINNED_STATUSES = ("403", "404", "422")
# The detail each error needs to be valid; {} for the rest.
DETAILS: dict[str, dict[str, Any]] = {
    "invalid_api_token": {"details": None},
    "unauthorized_network_for_api_token": {"ip_address": "192.0.2.10"},
    "scope_not_granted": {"scopes": ["ip_addresses"]},
    "rate_limit_reached": {"total_permitted": 1000},
    "invalid_argument": {"path": ["ip_address"], "issue": "missing_lookup_value"},
    "missing_required_argument": {"path": ["ip_address"]},
}
# Error bodies as the published document shows them: the inner object, not wrapped in {"error": ...}.
PUBLISHED_ERRORS = [
    (400, "missing_api_token"),
    (403, "scope_not_granted"),
    (403, "invalid_api_token"),
    (404, "ip_address_not_found"),
    (422, "invalid_ip"),
    (429, "rate_limit_reached"),
    (503, "service_unavailable"),
]


@cache
def fragment() -> dict[str, Any]:
    """spec/allocate_ip.yaml as data."""
    loaded: dict[str, Any] = yaml.safe_load(FRAGMENT.read_text(encoding="utf-8"))
    return loaded


@cache
def operation(path: str = ALLOCATE_PATH, method: str = "POST") -> Any:
    """One operation of the fragment, loaded by schemathesis."""
    return schemathesis.openapi.from_path(str(FRAGMENT))[path][method]


def recorded_interactions() -> list[dict[str, Any]]:
    """The real request/response pairs recorded against production."""
    loaded: list[dict[str, Any]] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return loaded


def is_relevant(interaction: dict[str, Any]) -> bool:
    """An allocate_ip call, or any ip_address_not_found error (the same error allocate_ip answers)."""
    path = httpx.URL(interaction["request"]["url"]).path
    body = interaction["response"].get("body_json")
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    return bool(RECORDED_ALLOCATE.search(path)) or code == "ip_address_not_found"


RELEVANT = [interaction for interaction in recorded_interactions() if is_relevant(interaction)]


def recorded_id(interaction: dict[str, Any]) -> str:
    """A readable test id: method, path and status."""
    request = interaction["request"]
    return f"{request['method']} {httpx.URL(request['url']).path} {interaction['response']['code']}"


def response(status: int, body: Any, *, headers: list[tuple[str, str]] | None = None, request: httpx.Request | None = None) -> httpx.Response:
    """A hand-built response to allocate_ip, ready for schemathesis (request and elapsed set)."""
    if request is None:
        request = httpx.Request("POST", f"https://api.katapult.io/core/v1{ALLOCATE_PATH}", json={})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    built = httpx.Response(status, headers=[("Content-Type", "application/json"), *(headers or [])], content=content, request=request)
    built.elapsed = datetime.timedelta(0)
    return built


def recorded_response(interaction: dict[str, Any]) -> httpx.Response:
    """A recorded interaction as the httpx.Response the suite would have received."""
    recorded_request, recorded = interaction["request"], interaction["response"]
    request = httpx.Request(recorded_request["method"], recorded_request["url"], content=recorded_request["body"].encode())
    headers = [(name, value) for name, values in recorded["headers"].items() for value in values]
    built = httpx.Response(recorded["code"], headers=headers, content=recorded["body_raw"].encode(), request=request)
    built.elapsed = datetime.timedelta(0)
    return built


def wrapped(code: str) -> dict[str, Any]:
    """An error body in the wire's shape."""
    return {"error": {"code": code, "description": "text", "detail": DETAILS.get(code, {})}}


def bare(code: str) -> dict[str, Any]:
    """An error body in the published document's shape (unwrapped)."""
    inner: dict[str, Any] = wrapped(code)["error"]
    return inner


def resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local $refs until the node is not a reference."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def published_codes(status: str) -> list[str]:
    """The error codes Katapult's published document lists for a status of allocate_ip."""
    document = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    answer = resolve(document, document["paths"][ALLOCATE_PATH]["post"]["responses"][status])
    schema = resolve(document, answer["content"]["application/json"]["schema"])
    branches = [resolve(document, branch) for branch in schema.get("oneOf", [schema])]
    return [code for branch in branches for code in resolve(document, branch["properties"]["code"])["enum"]]


def branches(status: str) -> list[str]:
    """The $refs of the fragment's oneOf branches for an error status of allocate_ip."""
    schema = fragment()["paths"][ALLOCATE_PATH]["post"]["responses"][status]["content"]["application/json"]["schema"]
    return [branch["$ref"] for branch in schema["oneOf"]]


def matches(ref: str, body: Any) -> bool:
    """Whether the body is valid under one component schema of the fragment."""
    validator = jsonschema.Draft202012Validator({"$ref": ref, "components": fragment()["components"]})
    return bool(validator.is_valid(body))


PUBLISHED_PINNED = [(status, code) for status in PINNED_STATUSES for code in published_codes(status)]


@pytest.mark.parametrize("path", SPEC_FILES, ids=[path.name for path in SPEC_FILES])
def test_spec_file_is_valid_openapi(path: Path) -> None:
    """Every file under spec/ is a valid OpenAPI document (openapi-spec-validator)."""
    document, _ = read_from_filename(str(path))
    validate_openapi(document)


def test_recorded_fixture_holds_the_interactions_to_check() -> None:
    """The recording still has both 200 allocate_ip calls and the ip_address_not_found error."""
    statuses = sorted(interaction["response"]["code"] for interaction in RELEVANT)
    assert statuses == [200, 200, 404]


@pytest.mark.parametrize("interaction", RELEVANT, ids=[recorded_id(interaction) for interaction in RELEVANT])
def test_recorded_response_validates(interaction: dict[str, Any]) -> None:
    """A real response allocate_ip could answer validates against the fragment (schemathesis)."""
    operation().validate_response(recorded_response(interaction))


@pytest.mark.parametrize("interaction", RELEVANT, ids=[recorded_id(interaction) for interaction in RELEVANT])
def test_recorded_response_passes_the_suites_checks(interaction: dict[str, Any]) -> None:
    """The suite's own check (status, content type, required headers, body) accepts what production sent."""
    conforms_to_fragment(recorded_response(interaction))


def test_recorded_not_found_validates_for_the_read_operation() -> None:
    """The recorded ip_address_not_found is also what the read support operation documents."""
    (not_found,) = [interaction for interaction in RELEVANT if interaction["response"]["code"] == 404]
    operation("/ip_addresses/ip_address", "GET").validate_response(recorded_response(not_found))


@pytest.mark.parametrize(("status", "code"), PUBLISHED_ERRORS, ids=[f"{status}-{code}" for status, code in PUBLISHED_ERRORS])
def test_published_bare_error_is_rejected(status: int, code: str) -> None:
    """The unwrapped error body the published docs show is rejected; the wire's wrapped one is accepted."""
    assert operation().is_valid_response(response(status, wrapped(code)))
    assert not operation().is_valid_response(response(status, bare(code)))


def recorded_200() -> dict[str, Any]:
    """The body of a real 200 from allocate_ip."""
    body: dict[str, Any] = next(i["response"]["body_json"] for i in RELEVANT if i["response"]["code"] == 200)
    return body


REQUIRED_200 = fragment()["components"]["schemas"]["AllocateIP200"]["properties"]["virtual_machine_network_interface"]["required"]


@pytest.mark.parametrize("field", REQUIRED_200)
def test_200_missing_a_required_field_is_rejected(field: str) -> None:
    """A real 200 body with one required interface field removed no longer validates."""
    body = copy.deepcopy(recorded_200())
    assert operation().is_valid_response(response(200, body))
    del body["virtual_machine_network_interface"][field]
    assert not operation().is_valid_response(response(200, body))


def test_200_without_the_interface_is_rejected() -> None:
    """A 200 body without virtual_machine_network_interface does not validate."""
    assert not operation().is_valid_response(response(200, {}))


@pytest.mark.parametrize(("status", "code"), PUBLISHED_PINNED, ids=[f"{status}-{code}" for status, code in PUBLISHED_PINNED])
def test_published_code_is_pinned_to_one_branch(status: str, code: str) -> None:
    """Each published 403/404/422 code validates, under exactly one oneOf branch of its status."""
    body = wrapped(code)
    assert [ref for ref in branches(status) if matches(ref, body)] == [f"#/components/schemas/{ref_name(code)}"]
    assert operation().is_valid_response(response(int(status), body))


def ref_name(code: str) -> str:
    """The fragment's schema name for an error code (the branch whose code const it is)."""
    found: list[str] = [name for name, schema in fragment()["components"]["schemas"].items() if const_code(schema) == code]
    assert len(found) == 1, f"{code} is pinned by {found}"
    return found[0]


def const_code(schema: dict[str, Any]) -> str | None:
    """The `error.code` const a component schema pins, if any."""
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    const = code.get("const") if isinstance(code, dict) else None
    return const if isinstance(const, str) else None


@pytest.mark.parametrize("status", PINNED_STATUSES)
def test_published_codes_are_exactly_the_fragments(status: str) -> None:
    """The fragment's oneOf for a status names exactly the codes the published document lists."""
    ours = sorted(const_code(fragment()["components"]["schemas"][ref.rsplit("/", 1)[1]]) or "" for ref in branches(status))
    assert ours == sorted(published_codes(status))


@pytest.mark.parametrize("status", ["400", *PINNED_STATUSES])
def test_code_of_another_status_is_rejected(status: str) -> None:
    """A wrapped error whose code belongs to no branch of the status is rejected."""
    assert not operation().is_valid_response(response(int(status), wrapped("rate_limit_reached")))
