"""`katapult-conformance replay`: recorded traffic is judged with the live checks, and nothing is sent."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import ServedMock

from conformance.setup.paths import data_path
from conformance.tools.replay.judge import operation_for
from conformance.tools.replay.main import main
from conformance.tools.replay.recordings import Recorded, RecordingError, load_recordings

RECORDED = data_path("fixtures", "recorded")
RECORDINGS = sorted(path for path in RECORDED.rglob("*") if path.suffix in (".json", ".yaml"))
PRODUCTION = RECORDED / "katapult-production-interactions.json"
VALID_TOKEN, INTERFACE, FREE_IP = "kmock-valid-7d1e0c5a9b", "vmnet_mockAlpha000001", "ip_mockFree000000001"
ALLOCATE = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"

Replay = Callable[..., tuple[int, str]]


@pytest.fixture
def replay(capsys: pytest.CaptureFixture[str]) -> Replay:
    """`replay(*args)`: run the replay command in-process; its exit code and what it printed."""

    def run(*args: str | Path) -> tuple[int, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def recorded(method: str, path: str, status: int = 200) -> Recorded:
    """A minimal recording of METHOD https://api.katapult.io PATH."""
    return Recorded("x.json", 0, method, f"https://api.katapult.io{path}", [], b"", status, [], b"{}")


@pytest.mark.parametrize(("method", "path", "operation"), [
    ("POST", "/core/v1" + ALLOCATE, "allocate_ip"),
    ("POST", "/core/v1/virtual_machine_network_interfaces/_/allocate_ip", "allocate_ip"),
    ("POST", ALLOCATE, "allocate_ip"),
    ("GET", "/core/v1/ip_addresses/ip_address", "get_ip_address"),
    ("GET", "/core/v1/ip_addresses/_", "get_ip_address"),
    ("POST", "/core/v1/ip_addresses/:ip_address/unallocate", "unallocate"),
    ("GET", "/core/v1" + ALLOCATE, None),
    ("POST", "/core/v1/organizations/_/ip_addresses", None),
    ("GET", "/core/v1/virtual_machine_network_interfaces/virtual_machine_network_interface", None),
])
def test_exchanges_map_by_method_and_either_path_form(method: str, path: str, operation: str | None) -> None:
    """The route-parameter segment may be its documented name, `_` or anything else; other endpoints map to nothing."""
    found = operation_for(recorded(method, path))
    assert (found.name if found else None) == operation


def test_every_recorded_file_conforms(replay: Replay) -> None:
    """Every file in fixtures/recorded/ replays clean (needs the fragment that follows the real wire)."""
    code, output = replay(*RECORDINGS)
    assert code == 0, output


def test_each_format_is_read() -> None:
    """The go-vcr cassette, the JSON interaction list and the flat sample each yield their interactions with status and body."""
    for path in RECORDINGS:
        found = load_recordings(path)
        assert found, path
        assert all(item.status >= 100 and item.method in ("GET", "POST", "PUT", "PATCH", "DELETE") for item in found), path


def unwrap_first_error(path: Path, target: Path) -> int:
    """Copy the JSON interaction list with the first mapped error body's envelope removed; return that interaction's index."""
    items = json.loads(path.read_text(encoding="utf-8"))
    for index, item in enumerate(items):
        response = item["response"]
        body = json.loads(response["body_raw"])
        if response["code"] >= 400 and "error" in body:
            response["body_raw"] = json.dumps(body["error"])
            response["body_json"] = body["error"]
            target.write_text(json.dumps(items), encoding="utf-8")
            return index
    raise AssertionError(f"{path} has no error body")


def test_unwrapped_error_body_fails_naming_interaction_and_finding(replay: Replay, tmp_path: Path) -> None:
    """One error body without its envelope: exit 1, naming the file, the interaction, its status and the finding."""
    broken = tmp_path / "unwrapped.json"
    index = unwrap_first_error(PRODUCTION, broken)
    clean_code, clean = replay(PRODUCTION)
    assert clean_code == 0, clean
    code, output = replay(broken)
    assert code == 1, output
    failed = [line for line in output.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 1, output
    assert f"{broken}#{index} GET /core/v1/ip_addresses/_ 404" in failed[0]
    assert "Response violates schema" in failed[0]
    assert "error is missing" in output and "Schema:" not in output  # told by path and rule, no schema dump
    assert any(line.startswith("fails") and "response shape" in line for line in output.splitlines()), output


def test_reports_and_baseline(replay: Replay, tmp_path: Path) -> None:
    """--conformance-report writes .md and .json; a baseline entry naming the promise turns the failure into a known deviation."""
    broken = tmp_path / "unwrapped.json"
    unwrap_first_error(PRODUCTION, broken)
    md, js = tmp_path / "out" / "replay.md", tmp_path / "out" / "replay.json"
    code, output = replay(broken, "--conformance-report", md, "--conformance-report", js)
    assert code == 1, output
    report = json.loads(js.read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert {p["id"]: p["verdict"] for p in report["promises"]}["response shape"] == "fails"
    assert "**fails**" in md.read_text(encoding="utf-8")
    baseline = tmp_path / "baseline.yaml"
    finding = report["findings"][0]
    entry = {key: finding[key] for key in ("promise", "check", "status", "code")}
    baseline.write_text(yaml.safe_dump([{**entry, "reason": "staging unwraps this error (TICKET-1)", "expires": "2999-12-31"}]),
                        encoding="utf-8")
    code, output = replay(broken, "--baseline", baseline)
    assert code == 0, output
    assert "known deviation" in output


def test_unreadable_file_is_exit_2(replay: Replay, tmp_path: Path) -> None:
    """A file in no known format is named, with exit 2."""
    odd = tmp_path / "odd.json"
    odd.write_text('{"hello": 1}', encoding="utf-8")
    code, output = replay(odd)
    assert code == 2
    assert "odd.json is not a go-vcr cassette, a HAR file or a JSON list" in output
    with pytest.raises(RecordingError):
        load_recordings(tmp_path / "missing.har")


def har_entry(response: httpx.Response) -> dict[str, Any]:
    """One HAR 1.2 entry for an exchange, as a browser or proxy would export it."""
    request = response.request
    return {
        "startedDateTime": "2026-01-01T00:00:00.000Z", "time": 1, "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        "request": {
            "method": request.method, "url": str(request.url), "httpVersion": "HTTP/1.1", "cookies": [], "queryString": [],
            "headers": [{"name": k, "value": v} for k, v in request.headers.multi_items()], "headersSize": -1,
            "bodySize": len(request.content),
            **({"postData": {"mimeType": "application/json", "text": request.content.decode()}} if request.content else {}),
        },
        "response": {
            "status": response.status_code, "statusText": response.reason_phrase, "httpVersion": "HTTP/1.1", "cookies": [],
            "headers": [{"name": k, "value": v} for k, v in response.headers.multi_items()], "redirectURL": "", "headersSize": -1,
            "bodySize": len(response.content),
            "content": {"size": len(response.content), "mimeType": response.headers.get("content-type", ""), "text": response.text},
        },
    }


def served_traffic(served: ServedMock) -> list[httpx.Response]:
    """A short session against the served mock: allocate (both path forms), read, unallocate, and another endpoint."""
    auth = {"Authorization": f"Bearer {VALID_TOKEN}"}
    body = {"virtual_machine_network_interface": {"id": INTERFACE}, "ip_address": {"id": FREE_IP}}
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        return [
            client.post(ALLOCATE.removeprefix("/"), json=body, headers=auth),
            client.post("virtual_machine_network_interfaces/_/allocate_ip", json=body, headers={"Authorization": "Bearer nope-0123456789abcdef"}),
            client.get("ip_addresses/ip_address", params={"ip_address[id]": FREE_IP}, headers=auth),
            client.post("ip_addresses/ip_address/unallocate", json={"ip_address": {"id": FREE_IP}}, headers=auth),
            client.get("organizations/_", headers=auth),
        ]


def test_har_exported_from_the_served_mock_is_judged(served_mock: ServedMock, replay: Replay, tmp_path: Path) -> None:
    """A HAR of a session with the served mock replays clean; the same HAR with the 403's envelope removed fails naming it."""
    exchanges = served_traffic(served_mock)
    assert [r.status_code for r in exchanges[:4]] == [200, 403, 200, 200]
    har = {"log": {"version": "1.2", "creator": {"name": "test_replay", "version": "1"}, "entries": [har_entry(r) for r in exchanges]}}
    path = tmp_path / "mock-session.har"
    path.write_text(json.dumps(har), encoding="utf-8")
    code, output = replay(path)
    assert code == 0, output
    assert "5 exchanges in 1 file; 4 judged, 1 of other endpoints skipped" in output
    entry = har["log"]["entries"][1]["response"]["content"]
    entry["text"] = json.dumps(json.loads(entry["text"])["error"])
    path.write_text(json.dumps(har), encoding="utf-8")
    code, output = replay(path)
    assert code == 1, output
    assert f"FAILED {path}#1 POST /core/v1/virtual_machine_network_interfaces/_/allocate_ip 403 [allocate_ip]" in output


def test_other_endpoints_errors_are_judged_on_request(replay: Replay, tmp_path: Path) -> None:
    """--judge-other-errors checks other endpoints' errors for the shared envelope and X-Api-Schema: json-error."""
    items = [{"method": "GET", "path": "/core/v1/disks/disk", "base_url": "https://api.katapult.io", "request_body": None, "status": 404,
              "headers": {"Content-Type": "application/json"}, "body": {"code": "disk_not_found", "description": "No disk", "detail": {}}}]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    code, output = replay(path)
    assert code == 5 and "/core/v1 (1)" in output, output  # nothing of the fragment's operations: nothing judged is no pass
    code, output = replay(path, "--judge-other-errors")
    assert code == 1, output
    assert "Error body is not the shared error envelope" in output


def browser_export(served: ServedMock) -> dict[str, Any]:
    """A HAR as a browser exports a session: the served mock's traffic, plus an aborted request and a 200 whose body was not kept."""
    exchanges = served_traffic(served)
    entries = [har_entry(response) for response in exchanges]
    aborted = har_entry(exchanges[0])
    aborted["response"] = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [], "redirectURL": "",
                           "headersSize": -1, "bodySize": -1, "content": {"size": 0, "mimeType": "x-unknown"}}
    aborted["_error"] = "net::ERR_ABORTED"
    uncaptured = har_entry(exchanges[0])
    del uncaptured["response"]["content"]["text"]
    return {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "entries": [*entries, aborted, uncaptured]}}


def test_aborted_and_uncaptured_exchanges_are_named_not_judged(served_mock: ServedMock, replay: Replay, tmp_path: Path) -> None:
    """An aborted request (status 0) and a 200 without its body are counted and named as not judgeable, never findings: exit 0."""
    path = tmp_path / "browser.har"
    path.write_text(json.dumps(browser_export(served_mock)), encoding="utf-8")
    code, output = replay(path)
    assert code == 0, output
    assert "7 exchanges in 1 file; 4 judged, 2 not judgeable, 1 of other endpoints skipped" in output
    allocate = "POST /core/v1/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"
    assert f"not judgeable: {path}#5 {allocate} (no answer): no answer: net::ERR_ABORTED" in output
    assert f"not judgeable: {path}#6 {allocate} 200: the response body was not captured" in output
    assert "FAILED" not in output and "finding:" not in output and "interactions" not in output and "none of its own ran" not in output


def test_nothing_judged_is_exit_5_naming_the_base_paths_seen(served_mock: ServedMock, replay: Replay, tmp_path: Path) -> None:
    """An empty HAR, or one recorded through a gateway under another base path, judges nothing: exit 5 saying why and what to pass;
    with that --base-path, the gateway's 409 for ip_already_allocated is found."""
    empty = tmp_path / "empty.har"
    empty.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}), encoding="utf-8")
    code, output = replay(empty)
    assert code == 5 and f"no exchange recorded in {empty}" in output, output
    har = browser_export(served_mock)
    conflict = har["log"]["entries"][0]
    conflict["response"].update(status=409, statusText="Conflict", content={"size": 10, "mimeType": "application/json", "text": json.dumps(
        {"error": {"code": "ip_already_allocated", "description": "The IP is already allocated", "detail": {}}})})
    for entry in har["log"]["entries"]:
        entry["request"]["url"] = entry["request"]["url"].replace("/core/v1/", "/katapult/core/v1/")
    gateway = tmp_path / "gateway.har"
    gateway.write_text(json.dumps(har), encoding="utf-8")
    code, output = replay(gateway)
    assert code == 5, output
    assert "under /katapult/core/v1 (6 exchanges): pass --base-path /katapult/core/v1" in output
    code, output = replay(gateway, "--base-path", "/katapult/core/v1")
    assert code == 1, output
    assert "Expected 422 ip_already_allocated" in output


def test_an_http2_exchange_reproduces_as_curl_http2(served_mock: ServedMock, replay: Replay, tmp_path: Path) -> None:
    """An HTTP/2 entry (pseudo-headers among its headers) that deviates is told as HTTP/2, and its curl asks for HTTP/2 with no
    pseudo-header."""
    har = browser_export(served_mock)
    entry = har["log"]["entries"][1]
    for part in ("request", "response"):
        entry[part]["httpVersion"] = "h2"
    entry["request"]["headers"] = [{"name": ":method", "value": "POST"}, {"name": ":authority", "value": "127.0.0.1"},
                                   {"name": ":path", "value": "/core/v1/virtual_machine_network_interfaces/_/allocate_ip"},
                                   {"name": ":scheme", "value": "http"}, *entry["request"]["headers"]]
    entry["response"]["headers"] = [{"name": ":status", "value": "403"}, *entry["response"]["headers"]]
    entry["response"]["content"]["text"] = json.dumps(json.loads(entry["response"]["content"]["text"])["error"])
    path = tmp_path / "h2.har"
    path.write_text(json.dumps(har), encoding="utf-8")
    code, output = replay(path, "-v")
    assert code == 1, output
    assert "Got: HTTP/2 403" in output
    curl = next(line.strip() for line in output.splitlines() if line.strip().startswith("curl "))
    assert curl.startswith("curl --http2 -i -X POST ") and " -H ':" not in curl, curl
