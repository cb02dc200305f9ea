"""The preflight: each setup mistake stops a live run before any test, with its own message and exit 6, in seconds."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import MOCK_TARGET_YAML, RunSuite, first_line, run_output, start_mock_server, stop

from conformance.gate.preflight import preflight
from conformance.mock.app import VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import MUTANTS, mock_class
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.setup.command import SETUP
from conformance.setup.fixtures import load_target_fixtures
from conformance.tools import doctor

SETUP_SECONDS = 10.0
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One faithful mock served over HTTP for the whole module (the preflight changes nothing on it)."""
    log = tmp_path_factory.mktemp("preflight-mock") / "stderr"
    with log.open("w", encoding="utf-8") as stderr:
        process = start_mock_server("--port", "0", stderr=stderr)
    url = first_line(process)
    assert url is not None, log.read_text(encoding="utf-8")
    yield url
    stop(process)


class Answers(BaseHTTPRequestHandler):
    """Answers every request with one fixed status, content type and body."""

    status = 200
    content_type = "text/html"
    body = b"<html><body>Welcome</body></html>"

    def answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def serve_answers(status: int, body: bytes) -> Iterator[str]:
    handler = type("Fixed", (Answers,), {"status": status, "body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/core/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def html_url() -> Iterator[str]:
    """A web server answering every request with a 200 HTML page (a portal, not the API)."""
    yield from serve_answers(200, b"<html><body>Welcome to the staging portal</body></html>")


@pytest.fixture
def https_port_url() -> Iterator[str]:
    """What nginx answers when plain HTTP reaches its HTTPS port."""
    yield from serve_answers(400, b"<html><center>The plain HTTP request was sent to HTTPS port</center></html>")


def fixtures_file(tmp_path: Path, edit: Edit) -> Path:
    """The mock's target fixtures with one edit."""
    data = yaml.safe_load(MOCK_TARGET_YAML.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def expired_token(data: dict[str, Any]) -> None:
    data["credentials"]["valid"] = "kmock-expired-0000000000"


def unknown_interface(data: dict[str, Any]) -> None:
    data["network_interface"]["id"] = "vmnet_doesNotExist0001"


def mistyped_address(data: dict[str, Any]) -> None:
    data["ip_addresses"]["allocatable"][0]["address"] = "185.199.221.100"


def free_ip_as_allocated_elsewhere(data: dict[str, Any]) -> None:
    data["ip_addresses"]["allocated_elsewhere"] = {"id": "ip_mockFree000000003", "address": "2a03:2800:b:1::42"}
    data["ip_addresses"]["allocatable"].pop()


def held_ip_as_allocatable(data: dict[str, Any]) -> None:
    data["ip_addresses"]["allocatable"].append({"id": "ip_mockHeld000000001", "address": "185.199.221.20"})


def valid_ip_as_invalid(data: dict[str, Any]) -> None:
    data["ip_addresses"]["invalid_for_interface"] = data["ip_addresses"]["allocatable"].pop()


def same_machine_other_interface(data: dict[str, Any]) -> None:
    data["other_network_interface"]["id"] = data["network_interface"]["id"]


def unchanged(data: dict[str, Any]) -> None:
    """The shipped fixtures as they are."""


MISTAKES = [
    pytest.param(expired_token, "", "credentials.valid is refused as invalid_api_token", id="expired-token"),
    pytest.param(unchanged, "drop /core/v1", "is --target-url the API base, ending in /core/v1?", id="missing-core-v1"),
    pytest.param(unknown_interface, "", "network_interface.id vmnet_doesNotExist0001 does not exist", id="unknown-interface"),
    pytest.param(mistyped_address, "", "has the address 185.199.221.10 on the target, not 185.199.221.100", id="mistyped-address"),
    pytest.param(free_ip_as_allocated_elsewhere, "", "ip_addresses.allocated_elsewhere ip_mockFree000000003 (2a03:2800:b:1::42) is free",
                 id="free-ip-as-allocated-elsewhere"),
    pytest.param(held_ip_as_allocatable, "", "ip_addresses.allocatable[3] ip_mockHeld000000001 (185.199.221.20) is held by vm_mockBravo",
                 id="held-ip-as-allocatable"),
    pytest.param(valid_ip_as_invalid, "", "ip_addresses.invalid_for_interface ip_mockFree000000003 (2a03:2800:b:1::42) is on",
                 id="valid-ip-as-invalid"),
    pytest.param(same_machine_other_interface, "", "is on the same virtual machine (vm_mockAlpha00000001)", id="same-vm-other-interface"),
]


def assert_stopped_by_preflight(result: pytest.RunResult, expected: str, elapsed: float) -> str:
    """Exit 6 before any test, the problem named once, no traceback, fast."""
    output = run_output(result)
    assert result.ret == SETUP, output
    problems = [line for line in output.splitlines() if line.startswith("katapult-conformance setup problem:")]
    assert problems and any(expected in line for line in problems), output
    assert "Traceback" not in output and "passed" not in output and "failed" not in output
    assert elapsed < SETUP_SECONDS, elapsed
    return output


@pytest.mark.parametrize(("edit", "suffix", "expected"), MISTAKES)
def test_setup_mistake_stops_the_run(edit: Edit, suffix: str, expected: str, mock_url: str, run_suite: RunSuite, tmp_path: Path) -> None:
    """Each setup mistake a new user makes ends the run with the preflight's message and exit 6, never a secret."""
    url = mock_url.removesuffix("/core/v1") if suffix == "drop /core/v1" else mock_url
    started = time.monotonic()
    result = run_suite("--pyargs", "conformance", "--target-url", url, "--target-fixtures", fixtures_file(tmp_path, edit))
    output = assert_stopped_by_preflight(result, expected, time.monotonic() - started)
    assert "kmock-expired-0000000000" not in output and "kmock-valid-7d1e0c5a9b" not in output


@pytest.mark.parametrize(("url_fixture", "expected"), [
    ("html_url", "with a body that is not JSON (text/html); is --target-url the API base, ending in /core/v1?"),
    ("https_port_url", "as an HTTPS server does; use https:// in --target-url"),
])
def test_a_server_that_is_not_the_api_stops_the_run(url_fixture: str, expected: str, request: pytest.FixtureRequest,
                                                    run_suite: RunSuite) -> None:
    """An HTML page, or an HTTPS port spoken to in plain HTTP, is a setup mistake with its own advice."""
    url = request.getfixturevalue(url_fixture)
    started = time.monotonic()
    result = run_suite("--pyargs", "conformance", "--target-url", url, "--target-fixtures", MOCK_TARGET_YAML)
    assert_stopped_by_preflight(result, expected, time.monotonic() - started)


def test_collect_only_sends_nothing(run_suite: RunSuite, html_url: str) -> None:
    """`--co` collects without a preflight, even against a URL that would fail it."""
    result = run_suite("--pyargs", "conformance", "--co", "-q", "--target-url", html_url, "--target-fixtures", MOCK_TARGET_YAML)
    assert result.ret == 0, run_output(result)


@pytest.mark.parametrize("name", [None, *sorted(MUTANTS)])
def test_no_mutant_is_blamed_on_the_setup(name: str | None) -> None:
    """Against the faithful mock and every mutant, the shipped fixtures pass the preflight in at most 20 requests."""
    clock = VirtualClock()
    target = mock_target(mock_class(name)(load_world(DEFAULT_WORLD), clock=clock), clock)
    found = preflight(target, load_target_fixtures(MOCK_TARGET_YAML, environ={}))
    assert found.problems == []
    assert 0 < found.requests <= 20
    assert len(found.holders) == 5


def test_doctor_prints_what_it_found(mock_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The doctor runs only the preflight: exit 0 and the starting state of every IP, or exit 6 and each problem."""
    assert doctor.main(["--target-url", mock_url, "--target-fixtures", str(MOCK_TARGET_YAML)]) == 0
    shown = capsys.readouterr().out
    assert "ip_mockHeld000000001 (185.199.221.20) starts held by vm_mockBravo00000001" in shown and "setup ok" in shown
    bad = fixtures_file(tmp_path, unknown_interface)
    assert doctor.main(["--target-url", mock_url, "--target-fixtures", str(bad)]) == SETUP
    shown = capsys.readouterr().out
    assert "setup problem: network_interface.id vmnet_doesNotExist0001 does not exist" in shown
    assert "kmock-valid-7d1e0c5a9b" not in shown


def test_a_setup_refused_at_the_first_request_says_only_what_it_found() -> None:
    """A preflight stopped before the interfaces says nothing of where their machines come from, and counts in English."""
    from conformance.gate.preflight import Preflight

    found = Preflight(problems=["POST allocate_ip answered 404 route_not_found: is --target-url the API base?"], requests=1)
    assert found.lines() == ["setup problem: POST allocate_ip answered 404 route_not_found: is --target-url the API base?",
                             "preflight sent 1 request"]


def test_doctor_names_each_entry_an_unset_variable_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An optional credential from a variable that is unset (a misspelt name) is absent: doctor names the key and the variable."""
    path = tmp_path / "target.yaml"
    path.write_text(MOCK_TARGET_YAML.read_text(encoding="utf-8").replace("without_scope: kmock-noscope-2b8f4e61c3",
                                                                         "without_scope: ${KC_TEST_TOKEN_WITHOUT_SCOPE}"), encoding="utf-8")
    monkeypatch.delenv("KC_TEST_TOKEN_WITHOUT_SCOPE", raising=False)
    assert doctor.main(["--target-fixtures", str(path)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "absent: credentials.without_scope, because KC_TEST_TOKEN_WITHOUT_SCOPE is unset or empty in the environment" \
           " (its scenarios are skipped)" in shown
    assert shown[-1] == "setup ok" and sum(line.startswith("absent:") for line in shown) == 1
