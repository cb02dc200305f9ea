"""Tests for conformance.tools.drift: known differences pass, published contract changes fail, bad input exits 2."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import unpadded

from conformance.setup.paths import data_path
from conformance.tools import drift

ROOT = Path(__file__).resolve().parent.parent
OPERATION = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"

Doc = dict[str, object]


def run_drift(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the drift command from a directory that is not the checkout."""
    return subprocess.run(
        [sys.executable, "-m", "conformance.tools.drift", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


@pytest.fixture(scope="module")
def published() -> Doc:
    """The shipped copy of Katapult's published document."""
    loaded: Doc = json.loads(data_path("fixtures", "published-openapi.json").read_text(encoding="utf-8"))
    return loaded


def schemas(doc: Doc) -> dict[str, dict[str, object]]:
    """The document's components/schemas."""
    components = doc["components"]
    assert isinstance(components, dict)
    found: dict[str, dict[str, object]] = components["schemas"]
    return found


def responses(doc: Doc) -> dict[str, object]:
    """The responses of the allocate_ip operation."""
    paths = doc["paths"]
    assert isinstance(paths, dict)
    found: dict[str, object] = paths[OPERATION]["post"]["responses"]
    return found


def add_422_code(doc: Doc) -> None:
    """Add an ip_address_locked error to the 422 oneOf."""
    s = schemas(doc)
    s["IPAddressLockedEnum"] = {"type": "string", "enum": ["ip_address_locked"]}
    s["IPAddressLockedSchema"] = {
        "type": "object",
        "properties": {
            "code": {"$ref": "#/components/schemas/IPAddressLockedEnum"},
            "description": {"type": "string"},
            "detail": {"type": "object"},
        },
    }
    one_of = s["OneOfIPAlreadyAllocatedInvalidIP422Res"]["oneOf"]
    assert isinstance(one_of, list)
    one_of.append({"$ref": "#/components/schemas/IPAddressLockedSchema"})


def remove_503(doc: Doc) -> None:
    """Remove the 503 response."""
    del responses(doc)["503"]


def add_409(doc: Doc) -> None:
    """Add a 409 response."""
    responses(doc)["409"] = {"$ref": "#/components/responses/APIAuthenticator503Response"}


def rename_code(doc: Doc) -> None:
    """Rename service_unavailable to service_down."""
    schemas(doc)["ServiceUnavailableEnum"]["enum"] = ["service_down"]


def add_lookup_key(doc: Doc) -> None:
    """Add ip_address.version to the request lookup."""
    properties = schemas(doc)["IPAddressLookup"]["properties"]
    assert isinstance(properties, dict)
    properties["version"] = {"type": "integer"}


def retype_interface_lookup(doc: Doc) -> None:
    """Make the interface lookup id an integer."""
    properties = schemas(doc)["VirtualMachineNetworkInterfaceLookup"]["properties"]
    assert isinstance(properties, dict)
    properties["id"] = {"type": "integer"}


def rename_detail_field(doc: Doc) -> None:
    """Rename the rate_limit_reached detail field total_permitted to permitted."""
    properties = schemas(doc)["RateLimitReached"]["properties"]
    assert isinstance(properties, dict)
    properties["permitted"] = properties.pop("total_permitted")


def remove_200_property(doc: Doc) -> None:
    """Drop mac_address from the 200 network interface."""
    schema = schemas(doc)["PostVirtualMachineNetworkInterfaceAllocateIP200ResponseVirtualMachineNetworkInterface"]
    properties = schema["properties"]
    assert isinstance(properties, dict)
    del properties["mac_address"]


def retype_nested_200_property(doc: Doc) -> None:
    """Make ip_addresses[].address an integer."""
    properties = schemas(doc)["PostVirtualMachineNetworkInterfaceAllocateIPPartIPAddresses"]["properties"]
    assert isinstance(properties, dict)
    properties["address"] = {"type": "integer"}


def change_scope(doc: Doc) -> None:
    """Require a different Authenticator scope."""
    paths = doc["paths"]
    assert isinstance(paths, dict)
    paths[OPERATION]["post"]["security"][1]["Authenticator"] = ["ip_addresses:write"]


def move_path(doc: Doc) -> None:
    """Publish the operation (same operationId) at another path."""
    paths = doc["paths"]
    assert isinstance(paths, dict)
    paths["/ip_addresses/ip_address/allocate"] = paths.pop(OPERATION)


def drop_operation(doc: Doc) -> None:
    """Remove the operation from the published document."""
    doc["paths"] = {}


CHANGES: list[tuple[Callable[[Doc], None], str]] = [
    (add_422_code, "NEW    response 422 code ip_address_locked: published"),
    (remove_503, "NEW    response 503: in spec/allocate_ip.yaml"),
    (add_409, "NEW    response 409: published"),
    (rename_code, "NEW    response 503 code service_down: published"),
    (add_lookup_key, "NEW    request ip_address.version type: published (integer)"),
    (retype_interface_lookup, "NEW    request virtual_machine_network_interface.id type: published integer"),
    (rename_detail_field, "NEW    detail rate_limit_reached.permitted type: published (integer)"),
    (remove_200_property, "NEW    200 virtual_machine_network_interface.mac_address type: in spec/allocate_ip.yaml"),
    (retype_nested_200_property, "NEW    200 virtual_machine_network_interface.ip_addresses[].address type"),
    (change_scope, "NEW    scope Authenticator: published ip_addresses:write"),
    (move_path, "NEW    operation path: published /ip_addresses/ip_address/allocate"),
    (drop_operation, "NEW    operation POST " + OPERATION),
]


def test_shipped_copy_has_only_known_differences() -> None:
    """The shipped published copy differs from the spec only in known, explained ways."""
    result = run_drift()
    assert result.returncode == 0, result.stdout + result.stderr
    shown = unpadded(result.stdout)
    lines = shown.splitlines()
    assert lines[-1].endswith(" known, 0 new")
    assert all(line.startswith("known ") for line in lines[:-1])
    for status in ("400", "403", "404", "422", "429", "503"):
        assert f'known response {status} envelope: error envelope: wrapped in {{"error": ...}}' in shown
    for code in ("invalid_argument", "missing_required_argument", "invalid_json_body"):
        assert f"known response 400 code {code}: undocumented error" in shown
    for fragment in ("required tightened", "pinned with const", "nullable: true", "headers declared", "exclusivity"):
        assert fragment in result.stdout


@pytest.mark.parametrize(("change", "expected"), CHANGES, ids=[change.__name__ for change, _ in CHANGES])
def test_published_change_is_new(
    published: Doc, tmp_path: Path, change: Callable[[Doc], None], expected: str
) -> None:
    """One change to the published contract is named as NEW and fails the run."""
    changed = copy.deepcopy(published)
    change(changed)
    path = tmp_path / "published.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    ours = drift.load(str(data_path("spec", "allocate_ip.yaml")))
    differences = drift.compare(drift.load(str(path)), ours)
    lines = [d.line() for d in differences if d.known is None]
    assert any(line.startswith(expected) for line in lines), lines
    assert drift.main([str(path)]) == 1


def test_cli_reports_new_difference(published: Doc, tmp_path: Path) -> None:
    """The command exits 1 and names the change."""
    changed = copy.deepcopy(published)
    add_422_code(changed)
    path = tmp_path / "published.json"
    path.write_text(json.dumps(changed), encoding="utf-8")
    result = run_drift(str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NEW response 422 code ip_address_locked: published" in unpadded(result.stdout)
    assert result.stdout.splitlines()[-1].endswith(" known, 1 new")


def test_yaml_published_copy(published: Doc, tmp_path: Path) -> None:
    """A YAML copy of the published document is read like the JSON one."""
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump(published), encoding="utf-8")
    assert drift.main([str(path)]) == 0


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints every difference with its kind and explanation."""
    assert drift.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new"] == 0
    assert report["known"] == len(report["differences"]) > 0
    assert {d["kind"] for d in report["differences"]} == {"known"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "cannot read"),
        ("{not json", "is not valid JSON or YAML"),
        ('["a list"]', "is not an OpenAPI document"),
    ],
    ids=["missing", "malformed", "not-openapi"],
)
def test_unusable_document_exits_2(tmp_path: Path, content: str | None, needle: str) -> None:
    """An unreadable or unparsable document exits 2 with one sentence on stderr and no traceback."""
    path = tmp_path / "published.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run_drift(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert needle in result.stderr and str(path) in result.stderr


def test_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory instead of a file exits 2."""
    assert drift.main([str(tmp_path)]) == 2
    assert f"katapult-conformance drift: error: cannot read {tmp_path}" in capsys.readouterr().err


def test_url_is_fetched(published: Doc, monkeypatch: pytest.MonkeyPatch) -> None:
    """An http(s) URL is fetched with httpx and a 10 s timeout."""
    calls: list[tuple[str, float]] = []

    def fake_get(url: str, *, timeout: float, follow_redirects: bool) -> httpx.Response:
        calls.append((url, timeout))
        return httpx.Response(200, text=json.dumps(published), request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert drift.main(["https://example.test/openapi.json"]) == 0
    assert calls == [("https://example.test/openapi.json", 10.0)]


def test_unfetchable_url_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that cannot be fetched exits 2 naming the URL."""

    def fake_get(url: str, *, timeout: float, follow_redirects: bool) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert drift.main(["https://example.test/openapi.json"]) == 2
    err = capsys.readouterr().err
    assert "cannot fetch https://example.test/openapi.json (connection refused)" in err
    assert len(err.strip().splitlines()) == 1


def test_http_error_status_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A URL answering 404 exits 2."""

    def fake_get(url: str, *, timeout: float, follow_redirects: bool) -> httpx.Response:
        return httpx.Response(404, text="not found", request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    assert drift.main(["https://example.test/openapi.json"]) == 2
    assert "cannot fetch https://example.test/openapi.json" in capsys.readouterr().err


def test_unknown_difference_is_new() -> None:
    """A difference no known row explains is new, and a child of a one-sided fact is not listed twice."""
    parent: drift.Key = ("response", "418", "")
    published = {parent: drift.Fact("documented", None), ("response", "418", "envelope"): drift.Fact("bare", parent)}
    differences = drift.diff(published, {})
    assert [(d.key, d.known) for d in differences] == [(parent, None)]


def test_unknown_option_is_one_line_and_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    """An option drift does not have is one line naming it and where the options are listed, exit 4 as in `run`."""
    with pytest.raises(SystemExit) as exited:
        drift.main(["--jsn"])
    assert exited.value.code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["katapult-conformance drift: error: unrecognized arguments: --jsn; see `katapult-conformance drift --help`"]
