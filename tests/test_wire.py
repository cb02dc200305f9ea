"""The wire as the revised fact sheet describes it: the mock follows it, the checks judge by it, and pacing survives it."""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_pacing import FakeClock

from conformance.contract.checks import ConformanceFailure, conforms_to_fragment
from conformance.mock.app import MockRequest, MockResponse, ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.setup.fixtures import TargetFixtures
from conformance.wire import api
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.pacing import RateLimitMonitor, burst, window_turned_over
from conformance.wire.paths import ALLOCATE_PATH, READ_INTERFACE_PATH
from conformance.wire.request_log import RequestLog
from conformance.wire.transport import BudgetExhausted, Pacer, RateLimitStalled, Target

LITERAL_PATH = ALLOCATE_PATH
UNDERSCORE_PATH = ALLOCATE_PATH.replace("/virtual_machine_network_interface/", "/_/")
HEX32 = "fec7e21dd384b1293bf4e88b1e263875"


def post(target: Target, fixtures: TargetFixtures, *, path: str = LITERAL_PATH, body: bytes | None = None,
         content_type: str | None = "application/json", query: dict[str, str] | None = None, credential: str | None = "valid") -> httpx.Response:
    """POST allocate_ip with exactly these bytes, content type and query string."""
    headers = dict(fixtures.credential(credential).headers) if credential else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return target.send("POST", path, content=body or b"", headers=headers, params=query)


def as_json(value: Any) -> bytes:
    """A JSON body."""
    return json.dumps(value).encode()


def holders(mock: ReferenceMock) -> dict[str, str | None]:
    """Every IP's interface, as the mock keeps it."""
    return {ip.id: ip.allocated_to for ip in mock.world.ips.values()}


# --- argument sources -----------------------------------------------------------------------------------------
def test_query_string_arguments_merge_under_the_body(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """A query id and a body address are one ambiguous lookup; a body id wins over a query id."""
    f = mock_target_fixtures
    free, other = f.allocatable[0], f.allocatable[1]
    interface = {"virtual_machine_network_interface": {"id": f.network_interface_id}}
    ambiguous = post(mock_api, f, body=as_json({**interface, "ip_address": {"address": other.address}}), query={"ip_address[id]": free.id})
    assert (ambiguous.status_code, error_detail(ambiguous).get("issue")) == (400, "ambiguous_lookup_values")
    body_wins = post(mock_api, f, body=as_json({**interface, "ip_address": {"id": "ip_unknown0000000001"}}), query={"ip_address[id]": free.id})
    assert (body_wins.status_code, error_code(body_wins)) == (404, "ip_address_not_found")
    query_only = post(mock_api, f, body=as_json(interface), query={"ip_address[id]": free.id})
    assert query_only.status_code == 200, query_only.text


def test_the_in_process_mock_answers_the_request_the_client_built(mock_api: Target, reference_mock: ReferenceMock,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """In process the mock gets httpx's own request (the client's default headers, the URL and query) and the response
    carries that request, as over a socket."""
    seen: list[MockRequest] = []
    answer = reference_mock.handle

    def handle(request: MockRequest) -> MockResponse:
        seen.append(request)
        return answer(request)

    monkeypatch.setattr(reference_mock, "handle", handle)
    response = mock_api.send("POST", LITERAL_PATH, content=b"{}", params={"ip_address[id]": "ip_x"}, headers={"Content-Type": "application/json"})
    [request] = seen
    assert request.headers["user-agent"].startswith("python-httpx/")
    assert (request.path, request.query) == (f"/core/v1{LITERAL_PATH}", {"ip_address[id]": "ip_x"})
    assert response.request.url == httpx.URL(mock_api.url(LITERAL_PATH), params={"ip_address[id]": "ip_x"})


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_json_is_read_only_as_application_json(content_type: str | None, mock_api: Target, reference_mock: ReferenceMock,
                                               mock_target_fixtures: TargetFixtures) -> None:
    """Valid JSON sent as anything but application/json is not read: no ip_address, nothing allocated."""
    f = mock_target_fixtures
    before = holders(reference_mock)
    body = as_json({"virtual_machine_network_interface": {"id": f.network_interface_id}, "ip_address": {"id": f.allocatable[0].id}})
    answer = post(mock_api, f, body=body, content_type=content_type)
    assert (answer.status_code, error_code(answer)) == (400, "missing_required_argument")
    assert error_detail(answer)["path"] == ["ip_address"]
    assert holders(reference_mock) == before


def test_vendor_json_content_type_is_read(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """Newer framework versions read application/*+json too."""
    f = mock_target_fixtures
    body = as_json({"virtual_machine_network_interface": {"id": f.network_interface_id}, "ip_address": {"id": f.allocatable[0].id}})
    assert post(mock_api, f, body=body, content_type="application/vnd.katapult+json").status_code == 200


@pytest.mark.parametrize("raw", [b"", b"null", b"[1, 2]", b'"text"', b"42"])
def test_empty_null_or_non_object_body_counts_as_no_arguments(raw: bytes, mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """An empty, null or non-object JSON body is {}: the interface comes from the path, ip_address is missing."""
    answer = post(mock_api, mock_target_fixtures, body=raw)
    assert (answer.status_code, error_code(answer)) == (400, "missing_required_argument"), answer.text


def test_malformed_json_detail_carries_the_parser_message(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """invalid_json_body's detail is {details: <parser message>}."""
    answer = post(mock_api, mock_target_fixtures, body=b'{"ip_address": ')
    assert (answer.status_code, error_code(answer)) == (400, "invalid_json_body")
    assert isinstance(error_detail(answer)["details"], str) and error_detail(answer)["details"]


# --- the path segment -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [LITERAL_PATH, UNDERSCORE_PATH])
def test_missing_interface_key_is_filled_from_the_path(path: str, mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """With the literal segment or `_`, a body without the interface key gets 404 virtual_machine_network_interface_not_found."""
    answer = post(mock_api, mock_target_fixtures, path=path, body=as_json({"ip_address": {"id": mock_target_fixtures.allocatable[0].id}}))
    assert (answer.status_code, error_code(answer)) == (404, "virtual_machine_network_interface_not_found")


def test_real_interface_id_in_the_path_allocates(mock_api: Target, reference_mock: ReferenceMock, mock_target_fixtures: TargetFixtures) -> None:
    """A real interface id as the segment serves a body without the interface key; a body's own key wins over the segment."""
    f = mock_target_fixtures
    path = ALLOCATE_PATH.replace("/virtual_machine_network_interface/", f"/{f.network_interface_id}/")
    answer = post(mock_api, f, path=path, body=as_json({"ip_address": {"id": f.allocatable[0].id}}))
    assert answer.status_code == 200, answer.text
    assert holders(reference_mock)[f.allocatable[0].id] == f.network_interface_id
    body_wins = post(mock_api, f, path=path, body=as_json({"virtual_machine_network_interface": {"id": "vmnet_unknown000001"},
                                                          "ip_address": {"id": f.allocatable[1].id}}))
    assert (body_wins.status_code, error_code(body_wins)) == (404, "virtual_machine_network_interface_not_found")


def test_explicit_null_interface_is_missing(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """An explicit null is not filled from the path: 400 missing_required_argument naming the argument."""
    f = mock_target_fixtures
    path = ALLOCATE_PATH.replace("/virtual_machine_network_interface/", f"/{f.network_interface_id}/")
    answer = post(mock_api, f, path=path, body=as_json({"virtual_machine_network_interface": None, "ip_address": {"id": f.allocatable[0].id}}))
    assert (answer.status_code, error_code(answer)) == (400, "missing_required_argument")
    assert error_detail(answer) == {"path": ["virtual_machine_network_interface"],
                                    "argument": {"name": "virtual_machine_network_interface", "description": None}}


# --- headers by stage -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("credential", "body", "status", "code"), [
    (None, b"{}", 400, "missing_api_token"),
    ("random", b"{}", 403, "invalid_api_token"),
])
def test_errors_before_the_rate_limiter_carry_no_rate_limit_headers(credential: str | None, body: bytes, status: int, code: str,
                                                                     mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """Authentication errors are answered before the rate limiter runs: X-Api-Schema and X-Request-Id, no X-RateLimit-*."""
    headers = {"Content-Type": "application/json"}
    if credential == "random":
        headers["Authorization"] = "Bearer kmock-this-token-does-not-exist"
    answer = mock_api.send("POST", ALLOCATE_PATH, content=body, headers=headers)
    assert (answer.status_code, error_code(answer)) == (status, code)
    assert "X-RateLimit-Permitted" not in answer.headers and "X-RateLimit-Remaining" not in answer.headers
    assert answer.headers["X-Api-Schema"] == "json-error" and answer.headers["X-Request-Id"]
    conforms_to_fragment(answer)


def test_wrong_method_is_route_not_found_before_authentication(mock_api: Target) -> None:
    """GET on allocate_ip without a token: 404 route_not_found, not missing_api_token, and no rate-limit headers."""
    answer = mock_api.send("GET", ALLOCATE_PATH)
    assert (answer.status_code, error_code(answer)) == (404, "route_not_found")
    assert "X-RateLimit-Remaining" not in answer.headers and answer.headers["X-Api-Schema"] == "json-error"


def test_errors_past_authentication_carry_rate_limit_headers_and_successes_no_api_schema(
        mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """400 argument errors, 404 and 422 carry X-RateLimit-*; a 200 carries them and no X-Api-Schema."""
    f = mock_target_fixtures
    interface = {"virtual_machine_network_interface": {"id": f.network_interface_id}}
    for body in ({**interface, "ip_address": {}}, {**interface, "ip_address": {"id": "ip_unknown0000000001"}},
                 {**interface, "ip_address": {"id": f.ip("invalid_for_interface").id}}):
        answer = post(mock_api, f, body=as_json(body))
        assert answer.status_code in (400, 404, 422)
        assert answer.headers["X-RateLimit-Permitted"].isdigit() and answer.headers["X-Api-Schema"] == "json-error"
        conforms_to_fragment(answer)
    success = post(mock_api, f, body=as_json({**interface, "ip_address": {"id": f.allocatable[0].id}}))
    assert success.status_code == 200 and "X-Api-Schema" not in success.headers
    conforms_to_fragment(success)


def test_object_expected_has_a_null_issue_description(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """The framework has no text for object_expected: issue_description is null, and the fragment accepts that."""
    f = mock_target_fixtures
    answer = post(mock_api, f, body=as_json({"virtual_machine_network_interface": {"id": f.network_interface_id}, "ip_address": "ip_x"}))
    assert error_detail(answer)["issue"] == "object_expected" and error_detail(answer)["issue_description"] is None
    conforms_to_fragment(answer)


def test_invalid_scalar_names_the_framework_argument(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """{"id": 123} is invalid_scalar at [ip_address, id], naming CoreAPI's IdArgument."""
    f = mock_target_fixtures
    answer = post(mock_api, f, body=as_json({"virtual_machine_network_interface": {"id": f.network_interface_id}, "ip_address": {"id": 123}}))
    detail = error_detail(answer)
    assert detail["path"] == ["ip_address", "id"] and detail["issue"] == "invalid_scalar"
    assert detail["argument"] == {"id": "CoreAPI/ArgumentSets/IPAddressLookup/IdArgument", "name": "id", "description": None}


# --- deployment generations -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("request_ids", "body_generation"), [("hex32", "current"), ("uuid", "legacy"), ("hex32", "legacy")])
def test_other_generations_of_the_wire_conform(request_ids: str, body_generation: str, mock_target_fixtures: TargetFixtures) -> None:
    """32-hex request ids and the pre-2024 200 without virtual_network both conform to the fragment."""
    clock = VirtualClock()
    mock = ReferenceMock(clock=clock, request_ids=request_ids, body_generation=body_generation)
    target = mock_target(mock, clock)
    f = mock_target_fixtures
    answer = post(target, f, body=as_json({"virtual_machine_network_interface": {"id": f.network_interface_id},
                                           "ip_address": {"id": f.allocatable[0].id}}))
    assert answer.status_code == 200
    assert ("virtual_network" in answer.json()["virtual_machine_network_interface"]) == (body_generation == "current")
    assert (len(answer.headers["X-Request-Id"]) == 32) == (request_ids == "hex32")
    conforms_to_fragment(answer)


def test_holders_are_virtual_machines(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """The suite reads an interface's virtual machine and sees IPs allocated through it held by that machine."""
    f = mock_target_fixtures
    credential = f.credential("valid")
    machine = api.virtual_machine_of(mock_api, credential, f.network_interface_id)
    assert machine == "vm_mockAlpha00000001"
    assert api.holder_of(mock_api, credential, f.ip("allocated_elsewhere")) == api.virtual_machine_of(mock_api, credential, f.other_interface())
    api.allocate(mock_api, credential, f.network_interface_id, {"id": f.allocatable[0].id})
    assert api.holder_of(mock_api, credential, f.allocatable[0]) == machine
    read = api.read_interface(mock_api, credential, f.network_interface_id)
    assert read.request.url.path.endswith(READ_INTERFACE_PATH)
    assert (f.allocatable[0].id, f.allocatable[0].address) in api.listed_ips(read)


# --- checks ---------------------------------------------------------------------------------------------------
def judged(status: int, headers: dict[str, str], body: Any, request_body: bytes = b"{}") -> httpx.Response:
    """A response as the checks see it."""
    request = httpx.Request("POST", f"http://target.invalid/core/v1{ALLOCATE_PATH}", content=request_body,
                            headers={"Content-Type": "application/json"})
    response = httpx.Response(status, headers={"Content-Type": "application/json", **headers}, content=json.dumps(body).encode(),
                              request=request)
    response.elapsed = datetime.timedelta(0)
    return response


NOT_FOUND = {"error": {"code": "ip_address_not_found", "description": "No IP addresses were found", "detail": {}}}
AFTER_AUTH = {"X-Request-Id": HEX32, "X-RateLimit-Permitted": "200", "X-RateLimit-Remaining": "10", "X-Api-Schema": "json-error"}


def test_a_faithful_error_passes_every_check() -> None:
    """A 404 as recorded from the non-production deployment (32-hex id) conforms."""
    conforms_to_fragment(judged(404, AFTER_AUTH, NOT_FOUND))


@pytest.mark.parametrize(("drop", "title", "promise"), [
    ("X-Api-Schema", "X-Api-Schema missing", "X-Api-Schema on errors"),
    ("X-RateLimit-Remaining", "X-RateLimit-Remaining missing", "rate-limit headers"),
])
def test_a_missing_wire_header_is_a_finding_of_its_own_promise(drop: str, title: str, promise: str) -> None:
    """Each header the wire always sends, left out, fails its own check under its own promise."""
    headers = {key: value for key, value in AFTER_AUTH.items() if key != drop}
    with pytest.raises(ConformanceFailure) as failure:
        conforms_to_fragment(judged(404, headers, NOT_FOUND))
    assert failure.value.title == title and failure.value.promise == promise


def test_an_empty_request_id_fails() -> None:
    """X-Request-Id is required and non-empty, whatever its format."""
    with pytest.raises(ConformanceFailure) as failure:
        conforms_to_fragment(judged(404, {**AFTER_AUTH, "X-Request-Id": ""}, NOT_FOUND))
    assert (failure.value.title, failure.value.promise) == ("X-Request-Id does not conform", "X-Request-Id on every response")


def test_a_success_with_api_schema_fails() -> None:
    """X-Api-Schema is on no success."""
    with pytest.raises(ConformanceFailure) as failure:
        conforms_to_fragment(judged(200, {**AFTER_AUTH, "X-Api-Schema": "json-error"}, {}))
    assert failure.value.title == "Success with X-Api-Schema"


@pytest.mark.parametrize(("request_body", "promise"), [(b'{"ip_address": {"id": "\xff"}}', "malformed bytes never crash the server"),
                                                        (b"{}", "no server errors")])
def test_a_500_is_charged_to_malformed_bytes_only_when_they_were_sent(request_body: bytes, promise: str) -> None:
    """A recorded-shape 500 (description null) fails; on non-UTF-8 bytes under the promise a team can accept on its own."""
    crash = {"error": {"code": "unhandled_exception", "description": None, "detail": {}}}
    with pytest.raises(ConformanceFailure) as failure:
        conforms_to_fragment(judged(500, {"X-Request-Id": HEX32, "X-Api-Schema": "json-error"}, crash, request_body))
    assert failure.value.promise == promise


# --- rate limits ----------------------------------------------------------------------------------------------
def limited(permitted: str, remaining: str, token: str = "t") -> httpx.Response:
    """A response with rate-limit headers, to a request with this token."""
    return httpx.Response(200, headers={"X-RateLimit-Permitted": permitted, "X-RateLimit-Remaining": remaining},
                          request=httpx.Request("POST", "http://target.invalid/", headers={"Authorization": f"Bearer {token}"}))


def unpaced_on_a_fake_clock() -> tuple[Pacer, FakeClock]:
    """A pacer without --max-rate, on a clock that moves only when the pacer sleeps."""
    clock = FakeClock()
    return Pacer(0.0, clock.sleep, clock), clock


@pytest.mark.parametrize(("permitted", "floor"), [("200", 40), ("1000", 200)])
def test_each_window_is_spent_to_a_fifth_of_the_first_permitted_seen(permitted: str, floor: int) -> None:
    """A token's window is spent down to 20% of its X-RateLimit-Permitted (later headers do not change it); --max-rate alone spaces requests."""
    clock = FakeClock()
    pacer = Pacer(0.125, clock.sleep, clock)
    pacer.after_response(limited(permitted, str(int(permitted) - 1)))
    pacer.after_response(limited("5000", str(floor + 1)))
    assert pacer.floor == floor and pacer.min_interval == 0.125 and clock.slept == []
    clock.now += 20.0
    pacer.after_response(limited(permitted, str(floor)))
    # The window was first seen at 0 s: at 20 s it has 40 s left, and a second more to be sure.
    assert clock.slept == [41.0]


def test_a_window_whose_start_was_not_seen_is_waited_out_whole() -> None:
    """Spent to the floor in a window first seen already low, the pacer waits a whole window."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("200", "41"))
    pacer.after_response(limited("200", "40"))
    assert clock.slept == [60.0]


def test_the_window_spent_hook_runs_once_before_the_wait() -> None:
    """The first window spent to its floor calls on_window_spent (the 429 burst) before waiting; later windows just wait."""
    pacer, clock = unpaced_on_a_fake_clock()
    calls: list[float] = []
    pacer.on_window_spent = lambda response: calls.append(sum(clock.slept))
    pacer.after_response(limited("200", "199"))
    pacer.after_response(limited("200", "40"))
    pacer.after_response(limited("200", "199"))
    pacer.after_response(limited("200", "40"))
    assert calls == [0.0] and len(clock.slept) == 2


def test_a_remaining_that_never_recovers_is_a_failure_after_one_window() -> None:
    """Low Remaining waits one window; still low after it, the pacer stops the run with a sentence instead of waiting again."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("1000", "3"))
    assert clock.slept == [60.0]
    with pytest.raises(RateLimitStalled, match="does not recover"):
        pacer.after_response(limited("1000", "3"))
    assert sum(clock.slept) == 60.0


def test_monitor_allows_concurrent_reordering_but_not_counting_up() -> None:
    """Remaining may rise by what is in flight; counting up past that, or above Permitted, is a problem."""
    reordered = RateLimitMonitor()
    for remaining in ("500", "498", "503", "497"):
        reordered.observe(limited("1000", remaining))
    assert reordered.problems == []
    counting_up = RateLimitMonitor()
    for remaining in range(1, 80):
        counting_up.observe(limited("1000", str(remaining)))
    assert counting_up.problems and "rose" in counting_up.problems[0]


def test_monitor_judges_a_rise_only_on_a_request_that_was_alone() -> None:
    """A response to a request sent beside others may be observed late; only a lone request's Remaining can prove a rise."""
    from conformance.wire.transport import OVERLAPPED

    stale = limited("1000", "500")
    stale.extensions[OVERLAPPED] = True
    monitor = RateLimitMonitor()
    for response in (limited("1000", "460"), stale, limited("1000", "455")):
        monitor.observe(response)
    assert monitor.problems == []
    monitor.observe(limited("1000", "520"))
    assert monitor.problems == ["Remaining rose from 455 to 520 without a new window (Permitted 1000)"]


def test_target_marks_requests_sent_beside_others(mock_target_fixtures: TargetFixtures) -> None:
    """A request alone is not marked overlapped; two sent together are (this mutant holds each allocation open a moment)."""
    from conformance.cases.concurrency import Call, send_together
    from conformance.mock.mutants import mock_class
    from conformance.mock.world import DEFAULT_WORLD, load_world
    from conformance.wire.transport import OVERLAPPED

    clock = VirtualClock()
    target = mock_target(mock_class("check-then-act-allocator")(load_world(DEFAULT_WORLD), clock=clock), clock)
    valid, interface = mock_target_fixtures.credential("valid"), mock_target_fixtures.network_interface_id
    alone = api.allocate(target, valid, interface, {"id": "ip_nope"})
    assert alone.extensions[OVERLAPPED] is False
    ip = mock_target_fixtures.allocatable_ip(0)
    together = send_together(target, [Call(valid, json=api.allocate_body(interface, {"id": ip.id})) for _ in range(2)])
    assert [response.extensions[OVERLAPPED] for response in together] == [True, True]


def test_window_turnover_is_noticed() -> None:
    """A jump back towards the top mid-burst is a new window."""
    assert window_turned_over([100, 90, 80, 995, 990])
    assert not window_turned_over([100, 98, 103, 90, 85])


def test_burst_reaches_the_limit_of_the_mock_and_stops(mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """A concurrent burst sized from Remaining gets a 429 within the bound and stops soon after."""
    credential = mock_target_fixtures.credential("valid")
    body = {"virtual_machine_network_interface": {"id": "vmnet_unknown000001"}, "ip_address": {"id": "ip_unknown0000000001"}}

    def send() -> httpx.Response:
        return mock_api.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False)

    result = burst(send, 1000 + 20)
    assert result.limited is not None and result.limited.status_code == 429
    assert result.sent <= 1000 + 20


def test_a_burst_tells_its_observers_one_response_at_a_time(mock_api: Target, mock_target_fixtures: TargetFixtures, tmp_path: Path) -> None:
    """The burst's threads each get an answer, but observers (the request log, the counts) hear of them one at a time:
    the request log keeps one whole line per request."""
    credential = mock_target_fixtures.credential("valid")
    body = {"virtual_machine_network_interface": {"id": "vmnet_unknown000001"}, "ip_address": {"id": "ip_unknown0000000001"}}
    inside: list[int] = []
    overlapped: list[int] = []

    def slow_observer(response: httpx.Response) -> None:
        inside.append(1)
        if len(inside) > 1:
            overlapped.append(len(inside))
        time.sleep(0.002)  # lets another thread run, as a write to a file or terminal would
        inside.pop()

    log = RequestLog(tmp_path / "requests.log", "run0")
    mock_api.observers += [slow_observer, log.observe]
    result = burst(lambda: mock_api.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False), 200)
    log.close()
    lines = (tmp_path / "requests.log").read_text(encoding="utf-8").splitlines()
    assert overlapped == []
    assert len(lines) == result.sent
    assert all(re.fullmatch(r"\S+Z POST \S+ .* -> (404|429) \S+", line) for line in lines)


def test_the_request_log_escapes_bytes_that_are_not_printable_text(mock_api: Target, mock_target_fixtures: TargetFixtures,
                                                                      tmp_path: Path) -> None:
    """A UTF-16 body (NUL bytes) or a newline in a body is one escaped line: grep still reads the log as text."""
    log = RequestLog(tmp_path / "requests.log", "run0")
    mock_api.observers.append(log.observe)
    post(mock_api, mock_target_fixtures, body='{"ip_address": {}}'.encode("utf-16"))
    post(mock_api, mock_target_fixtures, body=b'{"ip_address":\n {}}')
    log.close()
    raw = (tmp_path / "requests.log").read_bytes()
    lines = raw.decode("utf-8").splitlines()
    assert b"\x00" not in raw and len(lines) == 2
    assert "\\xff\\xfe{\\x00" in lines[0] and '{"ip_address":\\n {}}' in lines[1]


def test_burst_is_bounded_when_the_server_never_limits() -> None:
    """A server that never answers 429 ends the burst at its size."""
    calls = []

    def send() -> httpx.Response:
        calls.append(1)
        return limited("1000", "999")

    result = burst(send, 50)
    assert result.limited is None and result.sent == 50 and len(calls) == 50


def test_a_burst_that_runs_out_of_budget_stops_and_says_so() -> None:
    """A spent budget in any burst thread ends the whole burst and reaches the caller (the test is then skipped as not run),
    instead of dying unheard in its thread while the others spend what is left."""
    calls = []

    def send() -> httpx.Response:
        if len(calls) >= 10:
            raise BudgetExhausted("the request budget of 10 is spent; raise --max-requests to run more")
        calls.append(1)
        return limited("1000", "999")

    with pytest.raises(BudgetExhausted, match="budget of 10 is spent"):
        burst(send, 500)
    assert len(calls) == 10


@pytest.mark.parametrize("body", [b'{"ip_address": {"id": "\xff\xfe"}}', b"\x00\x01%s\\n'\"", "{\"id\": \"caf\u00e9\"}".encode()])
def test_the_reproduction_sends_the_very_bytes(body: bytes, tmp_path: Path) -> None:
    """A reproduce line's body reaches curl byte for byte: invalid UTF-8 and control bytes through printf, plain text quoted."""
    from conformance.wire.exchange import curl_line

    line = curl_line(httpx.Request("POST", "http://127.0.0.1:9/core/v1/x", content=body))
    capture = tmp_path / "body"
    # curl stands in for itself: a function that writes what it would send (its --data-binary, or stdin for @-).
    fake_curl = ('curl() { for a in "$@"; do if [ "$prev" = --data-binary ]; then if [ "$a" = @- ]; then cat; else printf %s "$a"; fi; fi;'
                 f' prev="$a"; done > {capture}; }}')
    subprocess.run(["bash", "-c", f"{fake_curl}\n{line}"], check=True)
    assert capture.read_bytes() == body


def test_a_burst_ends_with_about_one_429() -> None:
    """In-flight requests never outnumber the Remaining last seen plus one, so a burst that reaches the limit gets one 429,
    not one for every worker still sending."""
    lock = threading.Lock()
    left = [40]
    answers: list[int] = []

    def send() -> httpx.Response:
        with lock:
            left[0] -= 1
            remaining = left[0]
        time.sleep(0.002)
        response = limited("200", str(max(remaining, 0))) if remaining >= 0 else httpx.Response(429, request=httpx.Request("POST", "http://x/"))
        with lock:
            answers.append(response.status_code)
        return response

    result = burst(send, 40 + 20, remaining=40)
    assert result.limited is not None
    assert answers.count(429) <= 2, answers
    assert result.sent == len(answers) <= 43


def test_an_answer_that_conformed_is_not_validated_again(mock_api: Target, mock_target_fixtures: TargetFixtures,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """schemathesis' checks read status, Content-Type and body only: the same answer again is not re-validated, a different one is."""
    from conformance.contract import checks
    from conformance.contract.findings import RunContext

    run = RunContext()  # the run remembers what conformed; a check outside any run remembers nothing
    validated: list[int] = []
    original = checks.as_schemathesis_response
    monkeypatch.setattr(checks, "as_schemathesis_response", lambda response: validated.append(response.status_code) or original(response))
    for _ in range(3):
        conforms_to_fragment(api.allocate(mock_api, None, mock_target_fixtures.network_interface_id, {"id": "ip_x"}), run=run)
    assert validated == [400]
    broken = httpx.Response(400, headers={"Content-Type": "application/json"}, content=b'{"error": {}}',
                            request=httpx.Request("POST", "http://target.invalid/"))
    broken.elapsed = datetime.timedelta(seconds=0.01)
    for _ in range(2):
        with pytest.raises(ConformanceFailure):
            checks.fragment_shape(broken, run=run)
    assert validated == [400, 400, 400]
    conforms_to_fragment(api.allocate(mock_api, None, mock_target_fixtures.network_interface_id, {"id": "ip_x"}))
    assert validated == [400, 400, 400, 400]


def test_a_window_shared_with_another_client_is_not_a_stall() -> None:
    """After waiting for the window's end, a Remaining still under the floor (another client spends the token too) goes on
    down to the reserve; only a count still at the reserve after the wait is a failure."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("200", "40"))
    pacer.after_response(limited("200", "30"))
    pacer.after_response(limited("200", "6"))
    assert clock.slept == [60.0]
    with pytest.raises(RateLimitStalled):
        pacer.after_response(limited("200", "5"))


def test_a_token_unused_for_a_window_starts_its_next_window_at_its_next_request() -> None:
    """A token last seen near the top of a window long gone starts a new one at its next request: the pacer waits for that
    window's end, not the old one's (it waited a second, and called a faithful server's count stalled)."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("1000", "999", "scopeless"))
    pacer.after_response(limited("1000", "995", "scopeless"))
    clock.now = 540.0
    pacer.after_response(limited("1000", "999", "scopeless"))
    clock.now = 550.0
    pacer.after_response(limited("1000", "200", "scopeless"))
    assert clock.slept == [51.0]


def test_a_window_seen_long_ago_and_now_low_is_waited_out_whole() -> None:
    """A token back after a window's time, already low, is in a window whose start the pacer did not see: a whole window."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("1000", "999", "scopeless"))
    clock.now = 540.0
    pacer.after_response(limited("1000", "200", "scopeless"))
    assert clock.slept == [60.0]


def test_waiting_for_one_tokens_window_is_not_waiting_for_anothers() -> None:
    """Each token has its window: after waiting for one, another spent to the floor waits for its own end (no stall)."""
    pacer, clock = unpaced_on_a_fake_clock()
    pacer.after_response(limited("1000", "999", "valid"))
    clock.now = 30.0
    pacer.after_response(limited("1000", "999", "scopeless"))
    pacer.after_response(limited("1000", "200", "valid"))
    assert clock.slept == [31.0]
    pacer.after_response(limited("1000", "200", "scopeless"))
    assert clock.slept == [31.0, 30.0]


def test_putting_the_target_back_waits_only_at_the_last_requests_of_a_window() -> None:
    """Cleanup (after Ctrl-C a CI job has seconds) goes on below the floor, waits only at the reserve, and never bursts."""
    pacer, clock = unpaced_on_a_fake_clock()
    bursts: list[httpx.Response] = []
    pacer.on_window_spent = bursts.append
    pacer.after_response(limited("200", "40"), putting_back=True)
    assert clock.slept == [] and bursts == []
    pacer.after_response(limited("200", "5"), putting_back=True)
    assert clock.slept == [60.0] and bursts == []
