"""Nothing the suite changes survives it: starting states read once, moved IPs put back, what cannot be named with its fix."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import MOCK_TARGET_YAML, RunSuite, ServedMock, run_output

from conformance.gate.ledger import AllocationLedger
from conformance.gate.preflight import preflight
from conformance.mock.app import VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import mock_class
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.setup.fixtures import TargetFixtures, load_target_fixtures
from conformance.wire import api
from conformance.wire.request_log import RequestLog
from conformance.wire.transport import Target

FIXTURES = load_target_fixtures(MOCK_TARGET_YAML, environ={})
ALPHA_VM, BRAVO_VM = "vm_mockAlpha00000001", "vm_mockBravo00000001"
pytest_plugins = ["pytester"]
# Mutants that move or allocate fixture IPs they should not, each in its own way.
MOVERS = ["invalid-ip-unchecked", "already-allocated-ip-moved", "not-found-allocates-a-free-ip", "422-still-allocates"]


def ledger_on(mutant: str | None) -> tuple[Target, AllocationLedger]:
    """An in-process target (faithful or a mutant) and a ledger started from the preflight, as a live run starts it."""
    clock = VirtualClock()
    target = mock_target(mock_class(mutant)(load_world(DEFAULT_WORLD), clock=clock), clock)
    found = preflight(target, FIXTURES)
    ledger = AllocationLedger(target, FIXTURES.credential("valid"))
    target.observers.append(ledger.observe)
    ledger.start(found.holders)
    for interface, machine in found.machines.items():
        ledger.add_home(interface, machine)
    return target, ledger


def holders(target: Target) -> dict[str, str | None]:
    """Who holds each fixture IP, read straight from the target."""
    return {ip.id: api.holder_of(target, FIXTURES.credential("valid"), ip) for ip in FIXTURES.known_ips()}


def test_an_invalid_ip_allocated_by_a_generated_request_goes_back_to_free() -> None:
    """The starting state is the preflight's, not the first read after a misbehaving server moved the IP."""
    target, ledger = ledger_on("invalid-ip-unchecked")
    before = holders(target)
    ip = FIXTURES.ip("invalid_for_interface")
    assert api.allocate(target, FIXTURES.credential("valid"), FIXTURES.other_interface(), {"id": ip.id}).status_code == 200
    assert ledger.touch(ip) == BRAVO_VM and ledger.started[ip] is None
    assert ledger.restore() == []
    assert holders(target) == before


def test_a_moved_allocated_elsewhere_ip_goes_back_to_its_machine() -> None:
    """An IP that started on the other interface's machine is given back to it through that interface."""
    target, ledger = ledger_on("already-allocated-ip-moved")
    before = holders(target)
    ip = FIXTURES.ip("allocated_elsewhere")
    assert api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": ip.id}).status_code == 200
    assert ledger.holder(ip) == ALPHA_VM
    assert ledger.restore() == []
    assert holders(target) == before and before[ip.id] == BRAVO_VM


def test_an_ip_moved_unasked_is_found_at_the_end_and_put_back() -> None:
    """A rejection that allocates an IP it does not name is invisible to the test, but the end-of-run check finds and restores it."""
    target, ledger = ledger_on("not-found-allocates-a-free-ip")
    before = holders(target)
    response = api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": "ip_doesNotExist00001"})
    assert response.status_code == 404
    assert ledger.restore() == []
    assert ledger.verify() == []
    assert [drift.ip.id for drift in ledger.moved_unasked] == ["ip_mockFree000000003"]
    assert holders(target) == before


def test_an_ip_that_cannot_be_put_back_is_named_with_its_fix() -> None:
    """unallocate that does nothing: the drift names the IP, its starting holder and the command to run (token as a variable)."""
    target, ledger = ledger_on("unallocate-noop")
    ip = FIXTURES.allocatable_ip(0)
    assert api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": ip.id}).status_code == 200
    drifts = ledger.restore()
    assert [drift.ip for drift in drifts] == [ip]
    text = str(drifts[0])
    assert f"{ip.id} ({ip.address}): was free, now {ALPHA_VM}" in text
    assert "curl -sS -X POST 'http://katapult-mock.invalid/core/v1/ip_addresses/ip_address/unallocate'" in text
    # The mock's fixtures write the token inline: the command names it by the placeholder after its key.
    assert '-H "Authorization: Bearer ${CREDENTIALS_VALID}"' in text and "kmock-valid" not in text


def test_the_fix_presents_the_valid_token_by_its_own_variable(tmp_path: Path) -> None:
    """A credentials.valid read from ${VAR}: the put-back commands name that variable, never another nor the value."""
    path = tmp_path / "env-target.yaml"
    path.write_text(MOCK_TARGET_YAML.read_text(encoding="utf-8").replace("valid: kmock-valid-7d1e0c5a9b", "valid: ${KC_TEST_VALID}"),
                    encoding="utf-8")
    fixtures = load_target_fixtures(path, environ={"KC_TEST_VALID": "kmock-valid-7d1e0c5a9b"})
    target, ledger = ledger_on("unallocate-noop")
    ledger.credential = fixtures.credential("valid")
    ip = FIXTURES.allocatable_ip(0)
    assert api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": ip.id}).status_code == 200
    (drift,) = ledger.restore()
    assert drift.fix.count('-H "Authorization: Bearer ${KC_TEST_VALID}"') == 1
    assert "KATAPULT_API_TOKEN" not in drift.fix and "kmock-valid" not in drift.fix


def test_an_ip_that_could_not_be_put_back_stays_the_suites_to_put_back() -> None:
    """The end-of-run check names an IP a test's cleanup could not put back once, as not back: never as one the target moved
    though no test left it changed (the ledger no longer forgets it after the failed attempt)."""
    target, ledger = ledger_on("unallocate-noop")
    ip = FIXTURES.allocatable_ip(0)
    api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": ip.id})
    (first,) = ledger.restore()
    assert ledger.verify() == [first] and ledger.moved_unasked == []


def test_a_cleanup_failure_is_one_finding_naming_the_ip_its_holder_and_its_command(run_suite: RunSuite, tmp_path: Path) -> None:
    """The issue's run (`unallocate-noop`, one allocation): one finding for the one IP, in one message naming it, its starting
    holder and the command that puts it back, the same in the terminal, the report and JUnit; no traceback, no contradiction."""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run_suite("--pyargs", "conformance.test_scenarios", "--mock-mutant", "unallocate-noop",
                       "-k", "test_allocate_free_ip and id", "--conformance-report", report, "--junitxml", junit)
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert "Traceback" not in output and "ExceptionGroup" not in output and "no test left changed" not in output, output[-3000:]
    ip = FIXTURES.allocatable_ip(0)
    message = (f"{ip.id} ({ip.address}): was free, now {ALPHA_VM}; to restore it run: curl -sS -X POST"
               f" 'http://katapult-mock.invalid/core/v1/ip_addresses/ip_address/unallocate'")
    findings = [finding for finding in json.loads(report.read_text(encoding="utf-8"))["findings"] if finding["promise"] == "cleanup"]
    assert [finding["received"][:len(message)] for finding in findings] == [message]
    failing = [case for case in ET.parse(junit).getroot().iter("testcase") if case.find("error") is not None or case.find("failure") is not None]
    assert [case.get("name") for case in failing] == ["test_allocate_free_ip[id]"]
    result.stdout.fnmatch_lines([f"not back in its starting state: {message}*", f"  received: {message}*"])


def test_an_ip_whose_machine_has_no_known_interface_names_the_allocation_to_run() -> None:
    """Started on a machine the fixtures name no interface of: the fix says to allocate it to an interface of that machine."""
    target, ledger = ledger_on("already-allocated-ip-moved")
    del ledger.homes[BRAVO_VM]
    ip = FIXTURES.ip("allocated_elsewhere")
    api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": ip.id})
    (drift,) = ledger.restore()
    assert drift.started == BRAVO_VM and drift.now is None
    assert f'"virtual_machine_network_interface": {{"id": "<an interface of {BRAVO_VM}>"}}' in drift.fix


def test_holders_are_not_read_again_when_no_request_could_have_changed_them() -> None:
    """A rejected request naming no fixture IP costs no holder read; one naming an IP makes only that IP's holder stale."""
    target, ledger = ledger_on(None)
    first = FIXTURES.allocatable_ip(0)
    ledger.holder(first)
    sent = target.sent
    api.allocate(target, FIXTURES.credential("valid"), FIXTURES.network_interface_id, {"id": "ip_doesNotExist00001"})
    ledger.holder(first)
    assert target.sent == sent + 1
    api.allocate(target, None, FIXTURES.network_interface_id, {"id": first.id})
    ledger.holder(first)
    assert target.sent == sent + 3


@pytest.mark.parametrize("mutant", MOVERS)
def test_a_live_run_against_a_mover_leaves_every_ip_as_it_found_it(
    mutant: str, serve_mock: Callable[..., ServedMock], run_suite: RunSuite, mock_target_fixtures: TargetFixtures
) -> None:
    """Against a served mutant that moves IPs, the run fails (caught) and every fixture IP is back in its starting state."""
    served = serve_mock("--mutant", mutant, "--permitted", "1000000")
    live = httpx.Client(base_url=served.base_url, headers=dict(mock_target_fixtures.credential("valid").headers), timeout=10)

    def state() -> dict[str, object]:
        return {ip.id: live.get("/ip_addresses/ip_address", params={"ip_address[id]": ip.id}).json()["allocation"]
                for ip in mock_target_fixtures.known_ips()}

    before = state()
    result = run_suite("--pyargs", "conformance", "-q", "-k", "not rate_limit", "--target-url", served.base_url,
                        "--target-fixtures", MOCK_TARGET_YAML, "--max-rate", "2000")
    output = result.stdout.str()
    assert result.ret == 1, run_output(result)[-3000:]
    assert state() == before, output[-3000:]
    live.close()


def test_request_log_lines_carry_time_and_request_id(tmp_path: Path) -> None:
    """Each request log line starts with a UTC timestamp and ends with the response's X-Request-Id, to match server logs."""
    clock = VirtualClock()
    target = mock_target(mock_class(None)(load_world(DEFAULT_WORLD), clock=clock), clock)
    log = RequestLog(tmp_path / "requests.log", "run")
    target.observers.append(log.observe)
    response = api.allocate(target, None, FIXTURES.network_interface_id, {"id": "ip_x"})
    log.close()
    (line,) = (tmp_path / "requests.log").read_text(encoding="utf-8").splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z POST /core/v1/", line), line
    assert line.endswith(f"-> 400 {response.headers['X-Request-Id']}")



def test_a_run_stopped_early_names_what_it_could_not_put_back(serve_mock: Callable[..., ServedMock], run_suite: RunSuite) -> None:
    """Stopped by --maxfail against a server whose unallocate does nothing: no traceback; cleanup fails naming the IP and its fix."""
    served = serve_mock("--mutant", "unallocate-noop")
    done = run_suite("--pyargs", "conformance.test_scenarios", "-q", "--maxfail", "1", "-k", "allocate_free_ip",
                      "--target-url", served.base_url, "--target-fixtures", MOCK_TARGET_YAML, "--max-rate", "1000")
    stdout = done.stdout.str()
    output = run_output(done)
    assert done.ret == 1, output[-3000:]
    assert "Traceback" not in output
    assert re.search(r"^fails +cleanup: .*ip_mockFree000000001", stdout, re.MULTILINE), stdout[-3000:]
    assert re.search(r"^  received: ip_mockFree000000001 .*to restore it run: curl", stdout, re.MULTILINE), stdout[-3000:]
