"""Least privilege: an ip_addresses-only token runs green on a correct server; credential mix-ups are setup errors (exit 6)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import MOCK_TARGET_YAML, RunPytest, RunSuite, ServedMock, first_line, run_output, start_mock_server, stop

from conformance.gate.ledger import AllocationLedger
from conformance.gate.machines import ANSWERS_SOURCE, READ_SOURCE
from conformance.gate.preflight import Preflight, preflight
from conformance.gate.session import ConformanceSession, record_starting_state
from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import mock_class
from conformance.mock.world import DEFAULT_WORLD, Token, load_world
from conformance.setup.command import SETUP
from conformance.setup.fixtures import Credential, IPRef, TargetFixtures, load_target_fixtures
from conformance.wire import api
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.transport import Target, live_target

pytest_plugins = ["pytester"]

VALID = "kmock-valid-7d1e0c5a9b"
IPS_ONLY = "kmock-ipsonly-4e6d0b8a35"
READ_SCOPES = ["virtual_machines", "virtual_machines:read"]
ALPHA, BRAVO = "vmnet_mockAlpha000001", "vmnet_mockBravo000001"
ALPHA_VM, BRAVO_VM = "vm_mockAlpha00000001", "vm_mockBravo00000001"
# The interface read's field spec (published API schema); virtual_network only in the current generation.
FIELD_SPEC = {"id", "name", "virtual_machine", "ip_addresses", "mac_address", "state", "network", "speed_profile"}
REFUSAL_NOTE = "lacks the virtual_machines or virtual_machines:read scope"
# What the suite said before it learnt machines from the answers: a scope refusal blamed on the interface id.
WRONG_CAUSE = "check network_interface.id"
# A served mock whose limit the suite cannot reach, and the suite without its 429 burst (a real minute of waiting).
GENEROUS_LIMIT = ("--permitted", "1000000")
FAST_LIVE = ("--max-rate", "2000", "-k", "not rate_limit")


def fixtures_file(tmp_path: Path, **credentials: str) -> Path:
    """The mock's target fixtures with some credentials replaced."""
    data: dict[str, Any] = yaml.safe_load(MOCK_TARGET_YAML.read_text(encoding="utf-8"))
    data["credentials"].update(credentials)
    path = tmp_path / f"target-{'-'.join(sorted(credentials))}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def in_process(mutant: str | None = None, mock: ReferenceMock | None = None) -> Target:
    """An in-process target on a fresh faithful mock (or a mutant, or the mock given)."""
    clock = VirtualClock()
    return mock_target(mock or mock_class(mutant)(load_world(DEFAULT_WORLD), clock=clock), clock)


def preflight_of(path: Path, mutant: str | None = None) -> Preflight:
    """The preflight's findings for these fixtures against an in-process mock."""
    target = in_process(mutant)
    try:
        return preflight(target, load_target_fixtures(path, environ={}))
    finally:
        target.close()


def holders_seen_by(target: Target, credential: Credential, fixtures: TargetFixtures) -> dict[IPRef, str | None]:
    """Who holds each fixture IP, read with the given credential (the IP read needs only ip_addresses)."""
    return {ip: api.holder_of(target, credential, ip) for ip in fixtures.known_ips()}


# --- the mock serves the interface read as the real API does -------------------------------------------------------
def test_interface_read_needs_a_virtual_machines_scope(mock_api: Target, reference_mock: ReferenceMock) -> None:
    """An ip_addresses-only token may allocate but not read interfaces; either virtual_machines scope may."""
    ips_only = Credential.bearer("valid", IPS_ONLY)
    refused = api.read_interface(mock_api, ips_only, ALPHA)
    assert (refused.status_code, error_code(refused)) == (403, "scope_not_granted")
    assert error_detail(refused) == {"scopes": READ_SCOPES}
    assert api.allocate(mock_api, ips_only, ALPHA, {"id": "ip_mockFree000000001"}).status_code == 200
    reference_mock.world.tokens["kmock-vmread-0000000001"] = Token("kmock-vmread-0000000001", ("virtual_machines:read",))
    assert api.read_interface(mock_api, Credential.bearer("valid", "kmock-vmread-0000000001"), ALPHA).status_code == 200
    assert api.read_interface(mock_api, Credential.bearer("valid", VALID), ALPHA).status_code == 200


@pytest.mark.parametrize(("generation", "fields"), [("current", FIELD_SPEC | {"virtual_network"}), ("legacy", FIELD_SPEC)])
def test_interface_read_answers_its_field_spec(generation: str, fields: set[str]) -> None:
    """The read's body is the interface with exactly the published field spec, speed_profile included (allocate_ip's 200 has none)."""
    target = in_process(mock=ReferenceMock(load_world(DEFAULT_WORLD), clock=VirtualClock(), body_generation=generation))
    valid = Credential.bearer("valid", VALID)
    try:
        read = api.read_interface(target, valid, ALPHA).json()["virtual_machine_network_interface"]
        allocated = api.allocate(target, valid, ALPHA, {"id": "ip_mockFree000000001"}).json()["virtual_machine_network_interface"]
    finally:
        target.close()
    assert set(read) == fields
    assert set(read["speed_profile"]) == {"id", "name", "permalink"}
    assert set(read["virtual_machine"]) == {"id", "name"} and set(read["network"]) == {"id", "name"}
    assert all(set(item) == {"id", "address"} for item in read["ip_addresses"])
    assert set(allocated) == fields - {"speed_profile"}


# --- the preflight ----------------------------------------------------------------------------------------------------
def test_a_scope_refused_interface_read_is_a_note_naming_the_scope(tmp_path: Path) -> None:
    """With an ip_addresses-only token the setup is fine: a note names the scope and the source; nothing blames the interface id."""
    found = preflight_of(fixtures_file(tmp_path, valid=IPS_ONLY))
    assert found.problems == []
    assert any(REFUSAL_NOTE in note and "learnt from allocate_ip's answers" in note for note in found.notes), found.notes
    assert not any(WRONG_CAUSE in line for line in found.lines())
    assert found.machine_source == ANSWERS_SOURCE and f"interface virtual machines from {ANSWERS_SOURCE}" in found.lines()
    assert found.machines == {} and len(found.holders) == 5
    assert preflight_of(MOCK_TARGET_YAML).machine_source == READ_SOURCE


def test_an_interface_the_token_cannot_read_is_still_checked_to_exist(tmp_path: Path) -> None:
    """Unreadable for scope, a mistyped interface is still found: allocate_ip with an unknown IP looks it up and allocates nothing."""
    path = fixtures_file(tmp_path, valid=IPS_ONLY)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["other_network_interface"]["id"] = "vmnet_doesNotExist0001"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    found = preflight_of(path)
    assert [problem for problem in found.problems if "other_network_interface.id vmnet_doesNotExist0001 does not exist" in problem]
    assert len(found.problems) == 1, found.problems


def test_two_credentials_with_one_secret_are_a_setup_problem(tmp_path: Path) -> None:
    """without_scope given the valid token is named by its keys, never by its value."""
    found = preflight_of(fixtures_file(tmp_path, without_scope=VALID))
    assert any("credentials.without_scope is the same secret as credentials.valid" in problem for problem in found.problems), found.problems
    assert not any(VALID in line for line in found.lines())


def test_a_server_ignoring_the_scope_is_left_to_the_scenarios() -> None:
    """allocate_ip serving a token that unallocate refuses for scope is the server's deviation: a note, not a setup problem."""
    found = preflight_of(MOCK_TARGET_YAML, "scope-not-required")
    assert found.problems == []
    assert any("allocate_ip seems to ignore the scope" in note for note in found.notes), found.notes


# --- the run: machines learnt from answers, cleanup through them -----------------------------------------------------
def test_cleanup_learns_the_way_home_from_answers_alone(tmp_path: Path) -> None:
    """Where interfaces cannot be read, an IP moved off the other machine goes back through the interface a 200 names as that machine's."""
    target = in_process("already-allocated-ip-moved")
    fixtures = load_target_fixtures(fixtures_file(tmp_path, valid=IPS_ONLY), environ={})
    valid = fixtures.credential("valid")
    session = ConformanceSession(target, AllocationLedger(target, valid), "least-privilege", fixtures)
    target.observers += [session.interfaces.learn, session.ledger.observe]
    record_starting_state(session, None)
    before = holders_seen_by(target, valid, fixtures)
    assert session.interfaces.read_refused is not None and session.ledger.unplaced == [ALPHA, BRAVO]
    ip = fixtures.ip("allocated_elsewhere")
    assert api.allocate(target, valid, ALPHA, {"id": ip.id}).status_code == 200
    assert session.machine_of(ALPHA) == ALPHA_VM and session.machine_of(BRAVO) is None
    assert session.ledger.restore([ip]) == []
    assert holders_seen_by(target, valid, fixtures) == before and before[ip] == BRAVO_VM
    assert session.machine_of(BRAVO) == BRAVO_VM
    target.close()


def test_header_says_where_interface_machines_come_from(run_suite: RunSuite, tmp_path: Path) -> None:
    """In process, the report header says whether the interface read or allocate_ip's answers tell the machines; both runs pass."""
    selected = ("-k", "allocate_free_ip or other_machine or one_winner")
    refused = run_suite("--pyargs", "conformance", *selected, "--target-fixtures", fixtures_file(tmp_path, valid=IPS_ONLY))
    assert refused.ret == 0, refused.stdout.str()[-3000:]
    refused.stdout.fnmatch_lines([f"katapult-conformance interface virtual machines from {ANSWERS_SOURCE}, as *{REFUSAL_NOTE}*"])
    assert refused.parseoutcomes().get("passed") == 5
    read = run_suite("--pyargs", "conformance", *selected)
    assert read.ret == 0, read.stdout.str()[-3000:]
    read.stdout.fnmatch_lines([f"katapult-conformance interface virtual machines from {READ_SOURCE}"])


@pytest.fixture(scope="module")
def served_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One faithful mock served over HTTP for this module, with a limit the suite cannot reach (every run leaves it as found)."""
    log = tmp_path_factory.mktemp("least-privilege-mock") / "stderr"
    with log.open("w", encoding="utf-8") as stderr:
        process = start_mock_server("--port", "0", *GENEROUS_LIMIT, stderr=stderr)
    url = first_line(process)
    assert url is not None, log.read_text(encoding="utf-8")
    yield url
    stop(process)


def test_live_run_with_an_ip_addresses_only_token_passes_and_leaves_the_target_as_found(
        served_url: str, run_suite: RunSuite, tmp_path: Path) -> None:
    """The suite against a served correct server with a least-privilege token: green, the preflight says why, every IP as found."""
    path = fixtures_file(tmp_path, valid=IPS_ONLY)
    fixtures = load_target_fixtures(path, environ={})
    reader = live_target(served_url, timeout=5.0, max_requests=50, max_rate=1000.0)
    try:
        before = holders_seen_by(reader, fixtures.credential("valid"), fixtures)
        report = tmp_path / "report.json"
        done = run_suite("--pyargs", "conformance", "--target-url", served_url, "--target-fixtures", path, *FAST_LIVE,
                         "--conformance-report", report)
        after = holders_seen_by(reader, fixtures.credential("valid"), fixtures)
    finally:
        reader.close()
    output = run_output(done)
    assert done.ret == 0, output[-3000:]
    assert f"katapult-conformance preflight: interface virtual machines from {ANSWERS_SOURCE}" in output
    assert any(line.startswith("katapult-conformance preflight note:") and REFUSAL_NOTE in line for line in output.splitlines()), output
    assert WRONG_CAUSE not in output and "failed" not in done.stdout.str().splitlines()[-1]
    assert after == before
    assert json.loads(report.read_text(encoding="utf-8"))["machines_from"] == ANSWERS_SOURCE  # the report says it too


# A without_scope token that holds the scope is no longer certain to be the setup's (the server may ignore scopes): a doubt,
# tested in tests/test_authorization.py.
@pytest.mark.parametrize("credentials", [{"without_scope": VALID}], ids=["same-secret"])
def test_a_credential_mix_up_exits_6_before_any_test(credentials: dict[str, str], served_url: str, run_suite: RunSuite,
                                                      tmp_path: Path) -> None:
    """A without_scope token that is the valid one stops a live run with exit 6 before any test; no secret shown."""
    result = run_suite("--pyargs", "conformance", "--target-url", served_url, "--target-fixtures", fixtures_file(tmp_path, **credentials))
    output = run_output(result)
    assert result.ret == SETUP, output[-3000:]
    problems = [line for line in output.splitlines() if line.startswith("katapult-conformance setup problem: credentials.without_scope")]
    assert len(problems) == 1, output[-3000:]
    assert "passed" not in output and "failed" not in output
    assert VALID not in output and IPS_ONLY not in output


@pytest.mark.nightly
def test_an_ip_addresses_only_token_passes_a_default_live_run_at_200_per_minute(
        serve_mock: Callable[..., ServedMock], run_pytest: RunPytest, tmp_path: Path) -> None:
    """At 200 requests a minute with real latency, a default live run with a least-privilege token exits 0 and leaves the target as found."""
    served = serve_mock("--permitted", "200", "--latency", "30-80")
    path = fixtures_file(tmp_path, valid=IPS_ONLY)
    fixtures = load_target_fixtures(path, environ={})
    reader = live_target(served.base_url, timeout=5.0, max_requests=50, max_rate=100.0)
    try:
        before = holders_seen_by(reader, fixtures.credential("valid"), fixtures)
        done = run_pytest("--pyargs", "conformance", "-q", "--target-url", served.base_url, "--target-fixtures", path, timeout=600)
        after = holders_seen_by(reader, fixtures.credential("valid"), fixtures)
    finally:
        reader.close()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert after == before
