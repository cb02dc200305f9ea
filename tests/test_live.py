"""Live mode for real: the mock served over HTTP, the live target, and the suite run against a URL as a user runs it."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest
from helpers import run_output

from conformance.contract.checks import conforms_to_fragment
from conformance.setup.fixtures import IPRef, TargetFixtures
from conformance.wire import api, transport
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.paths import ALLOCATE_PATH
from conformance.wire.transport import Target, live_target

if TYPE_CHECKING:
    from helpers import RunSuite, ServedMock

BASE_URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/core/v1$")
OUTCOMES = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)")
# The rate-limit scenario bursts past the limit and waits for a new window (a real minute on a served mock).
NOT_RATE_LIMIT = ("-k", "not rate_limit")
# A served mock with a limit the generated tests cannot reach: otherwise the pacer waits out a real 60 s window.
GENEROUS_LIMIT = ("--permitted", "1000000")


def free_port() -> int:
    """A port nothing listens on (taken from the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def live(base_url: str, max_requests: int = 50) -> Target:
    """A live target on the served mock, fast enough for loopback."""
    return live_target(base_url, timeout=5.0, max_requests=max_requests, max_rate=1000.0)


def holders(base_url: str, fixtures: TargetFixtures) -> dict[IPRef, str | None]:
    """Who holds each IP the fixtures name, read from the served mock with GET /ip_addresses/ip_address."""
    target = live(base_url)
    try:
        return {ip: api.holder_of(target, fixtures.credential("valid"), ip) for ip in fixtures.known_ips()}
    finally:
        target.close()


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    """The counts on pytest's final summary line."""
    last = result.stdout.str().strip().splitlines()[-1]
    return {name: int(count) for count, name in OUTCOMES.findall(last)}


def test_served_mock_prints_its_base_url_first(served_mock: ServedMock) -> None:
    """The first stdout line is the API base URL on a real port, and the mock answers there."""
    match = BASE_URL.match(served_mock.base_url)
    assert match is not None, served_mock.base_url
    assert int(match.group(1)) > 0
    answer = httpx.post(served_mock.base_url + ALLOCATE_PATH, json={}, timeout=5)
    assert (answer.status_code, error_code(answer)) == (400, "missing_api_token")


def test_busy_port_is_a_clear_error() -> None:
    """`--port` on a port already listened on is a bad option value: exit 4 with one line naming the port, no URL and no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "conformance.mock", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 4
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("katapult-conformance mock: error: ")
    assert str(port) in lines[0] and "already in use" in lines[0] and "--port" in lines[0]


def test_live_target_talks_http(served_mock: ServedMock, mock_target_fixtures: TargetFixtures) -> None:
    """Through live_target: a 200 that conforms, seen by the read operation, undone by unallocate; the caller's real address."""
    target = live(served_mock.base_url)
    seen: list[httpx.Response] = []
    target.observers.append(seen.append)
    valid, ip = mock_target_fixtures.credential("valid"), mock_target_fixtures.allocatable[0]
    interface = mock_target_fixtures.network_interface_id
    try:
        answer = api.allocate(target, valid, interface, {"id": ip.id})
        assert answer.status_code == 200, answer.text
        conforms_to_fragment(answer)
        # The wire names the interface's virtual machine as the holder (fixtures/mock-world.yaml).
        assert api.holder_of(target, valid, ip) == api.virtual_machine_of(target, valid, interface) == "vm_mockAlpha00000001"
        assert api.unallocate(target, valid, ip).status_code == 200
        assert api.holder_of(target, valid, ip) is None
        refused = api.allocate(target, mock_target_fixtures.credential("network_restricted"), interface, {"id": ip.id})
        conforms_to_fragment(refused)
        assert error_detail(refused) == {"ip_address": "127.0.0.1"}
    finally:
        target.close()
    assert len(seen) == target.sent == 6
    assert all(response.request.url.host == "127.0.0.1" for response in seen)


def test_suite_passes_live_and_leaves_the_target_as_found(
    serve_mock: Callable[..., ServedMock], run_suite: RunSuite, mock_target_fixtures: TargetFixtures
) -> None:
    """The whole suite against a served mock passes, shows the URL's source, restores every IP, and a second run agrees."""
    served = serve_mock(*GENEROUS_LIMIT)
    before = holders(served.base_url, mock_target_fixtures)
    assert all(before[ip] is None for ip in mock_target_fixtures.allocatable)
    args = ("--pyargs", "conformance", "--target-url", served.base_url, "--target-fixtures", mock_target_fixtures.source, "--max-rate", "2000")
    first = run_suite(*args, *NOT_RATE_LIMIT)
    shown = first.stdout.str()
    assert first.ret == 0, run_output(first)[-3000:]
    assert f"katapult-conformance target: {served.base_url} [--target-url]" in shown
    assert f"katapult-conformance fixtures: {mock_target_fixtures.source} [--target-fixtures]" in shown
    assert outcomes(first).get("passed", 0) > 0 and "failed" not in outcomes(first)
    assert not [secret for secret in mock_target_fixtures.secrets() if secret in run_output(first)]
    assert holders(served.base_url, mock_target_fixtures) == before
    second = run_suite(*args, *NOT_RATE_LIMIT, "-q")
    assert second.ret == 0, run_output(second)[-3000:]
    assert outcomes(second) == outcomes(first)
    assert holders(served.base_url, mock_target_fixtures) == before


def test_unreachable_target_stops_the_run_with_one_message(run_suite: RunSuite, mock_target_fixtures: TargetFixtures,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port stops the session before any test, with one line naming the URL, no traceback, no per-test errors."""
    url = f"http://127.0.0.1:{free_port()}/core/v1"
    # The run's backoffs between resends are noted, not slept: what they would have cost still counts in `elapsed`.
    waits: list[float] = []
    monkeypatch.setattr(transport, "LIVE_CLOCK", (waits.append, time.monotonic))
    started = time.monotonic()
    result = run_suite("--pyargs", "conformance", "-q", "--target-url", url, "--target-fixtures", mock_target_fixtures.source)
    elapsed = time.monotonic() - started + sum(waits)
    output = run_output(result)
    assert result.ret == 4, output
    messages = [line for line in output.splitlines() if "cannot reach" in line]
    assert len(messages) == 1 and url in messages[0], output
    assert messages[0].startswith("ERROR: katapult-conformance: cannot reach") and "--target-url" in messages[0]
    assert "Traceback" not in output and "passed" not in output and "failed" not in output
    assert elapsed < 60


def test_served_mock_can_be_reset_and_switched_to_maintenance(served_mock: ServedMock, mock_target_fixtures: TargetFixtures) -> None:
    """POST /__mock__/reset undoes allocations; /__mock__/maintenance/on makes the API answer 503 until switched off."""
    root = served_mock.base_url.rsplit("/core/v1", 1)[0]
    ip = mock_target_fixtures.allocatable[0]
    token = mock_target_fixtures.credential("valid").headers
    body = {"virtual_machine_network_interface": {"id": mock_target_fixtures.network_interface_id}, "ip_address": {"id": ip.id}}
    allocate = f"{served_mock.base_url}/virtual_machine_network_interfaces/_/allocate_ip"
    assert httpx.post(allocate, json=body, headers=token).status_code == 200
    assert httpx.post(f"{root}/__mock__/maintenance/on").status_code == 204
    assert httpx.post(allocate, json=body, headers=token).status_code == 503
    assert httpx.post(f"{root}/__mock__/maintenance/off").status_code == 204
    assert httpx.post(f"{root}/__mock__/reset").status_code == 204
    read = httpx.get(f"{served_mock.base_url}/ip_addresses/ip_address", params={"ip_address[id]": ip.id}, headers=token)
    assert read.json()["allocation"] is None


FRONT_END = ("--connection-close", "--gzip", "--chunked", "--charset")


def test_real_front_ends_are_not_faults(serve_mock: Callable[..., ServedMock], run_suite: RunSuite,
                                        mock_target_fixtures: TargetFixtures) -> None:
    """Connection: close on every answer, gzip, chunked bodies and `; charset=utf-8` are correct HTTP: the scenarios and the
    concurrency tests pass live against a mock answering all four ways (each alone: tests/test_network_live.py, nightly)."""
    served = serve_mock(*GENEROUS_LIMIT, *FRONT_END)
    done = run_suite("--pyargs", "conformance.test_scenarios", "conformance.test_concurrency", "-q", "--target-url", served.base_url,
                      "--target-fixtures", mock_target_fixtures.source, "--max-rate", "2000", *NOT_RATE_LIMIT)
    assert done.ret == 0, run_output(done)[-3000:]
    assert "failed" not in outcomes(done) and outcomes(done).get("passed", 0) > 40
