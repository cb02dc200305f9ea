"""Authorization beyond one token (#26): exit 6 only for certain setup mistakes; a token served past a scope it is documented
to lack is a doubt, not a setup error (the tests run, the promise concerned fails naming both causes, nothing is sent with it)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import MOCK_TARGET_YAML

from conformance.gate.preflight import PROBE_INTERFACE_ID, PROBE_IP_ID, Preflight, preflight
from conformance.mock.app import MockRequest, MockResponse, ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import MUTANTS, mock_class
from conformance.mock.server import MockServer
from conformance.mock.world import DEFAULT_WORLD, HOME_ORGANIZATION, Token, load_world
from conformance.setup.command import FAILED, SETUP
from conformance.setup.fixtures import Credential, FixturesError, IPRef, OtherOrganization, load_target_fixtures
from conformance.setup.paths import data_path
from conformance.tools import doctor
from conformance.tools import mutation as runner
from conformance.wire import api
from conformance.wire.exchange import error_code, error_detail
from conformance.wire.transport import Target

pytest_plugins = ["pytester"]
# Each in-process run finds the suite's libraries already imported (see conftest.suite_imports_warm): about half its time.
pytestmark = pytest.mark.usefixtures("suite_imports_warm")

VALID = "kmock-valid-7d1e0c5a9b"
IPS_ONLY = "kmock-ipsonly-4e6d0b8a35"
READ_ONLY = "kmock-readonly-3c5a7e9b21"
OTHER_ORGANIZATION = "kmock-otherorg-8f2d6b4e90"
ALPHA, FOREIGN_INTERFACE = "vmnet_mockAlpha000001", "vmnet_mockForeign00001"
FREE = IPRef("ip_mockFree000000001", "185.199.221.10")
FOREIGN_IP = IPRef("ip_mockForeign000001", "185.199.221.30")
# The live runs here: the served mock never paces them (an allowance no run reaches), and no 429 burst (a real minute).
FAST_LIVE = ("--max-rate", "2000", "--request-timeout", "5")
PERMITTED = 1_000_000
BOTH_CAUSES = ("either the token holds ip_addresses", "or the server ignores scopes")


def edited(tmp_path: Path, **values: Any) -> Path:
    """The mock's target fixtures with values replaced at dotted keys (`other_organization.ip_address`); None removes the key."""
    data: dict[str, Any] = yaml.safe_load(MOCK_TARGET_YAML.read_text(encoding="utf-8"))
    for dotted, value in values.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / "target-edited.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def preflight_of(path: Path, mutant: str | None = None, tokens: tuple[Token, ...] = ()) -> Preflight:
    """The preflight's findings for these fixtures against an in-process mock (or mutant) whose world also knows `tokens`."""
    clock = VirtualClock()
    world = load_world(DEFAULT_WORLD)
    world.tokens.update({token.token: token for token in tokens})
    target = mock_target(mock_class(mutant)(world, clock=clock), clock)
    try:
        return preflight(target, load_target_fixtures(path, environ={}))
    finally:
        target.close()


class Received:
    """Every request a served mock answered: the bearer token, method, path and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, str, str, bytes]] = []
        self.lock = threading.Lock()

    def sent_with(self, token: str) -> list[tuple[str, str, bytes]]:
        """The requests made with one token."""
        return [(method, path, body) for used, method, path, body in self.requests if used == token]


@contextmanager
def served(mutant: str | None = None) -> Iterator[tuple[str, Received]]:
    """The mock (or a mutant) served over loopback HTTP in this process, with an allowance no run reaches; what it was sent."""
    world = load_world(DEFAULT_WORLD)
    world.permitted = PERMITTED
    seen = Received()
    base = mock_class(mutant)

    class Recording(base):  # type: ignore[valid-type,misc]
        def handle(self, request: MockRequest) -> MockResponse:
            with seen.lock:
                seen.requests.append((self.bearer_token(request), request.method, request.path, request.body))
            return super().handle(request)

    server = MockServer(Recording(world)).start()
    try:
        yield server.base_url, seen
    finally:
        server.stop()


def live_run(pytester: pytest.Pytester, url: str, fixtures: Path, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """The suite in this process against a served mock, with its JSON report."""
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess("--pyargs", "conformance", "-p", "no:cacheprovider", "--target-url", url,
                                          "--target-fixtures", str(fixtures), *FAST_LIVE, "--conformance-report", str(report), *args)
    return result, json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """Each promise's verdict in a JSON report."""
    return {promise["id"]: promise["verdict"] for promise in report["promises"]}


def probes_only(sent: list[tuple[str, str, bytes]]) -> bool:
    """Whether every request in `sent` names only the preflight's probe objects (which no target has: nothing can change)."""
    return bool(sent) and all(PROBE_IP_ID.encode() in body and (path.endswith("/unallocate") or PROBE_INTERFACE_ID.encode() in body)
                              for _, path, body in sent)


# --- the preflight ----------------------------------------------------------------------------------------------------
def test_a_without_scope_token_holding_the_scope_is_a_doubt_naming_both_causes(tmp_path: Path) -> None:
    """Served by allocate_ip and unallocate alike, the token may hold the scope or the server may ignore scopes: a doubt, not a problem."""
    found = preflight_of(edited(tmp_path, **{"credentials.without_scope": IPS_ONLY}))
    assert found.problems == [] and found.ok
    (doubt,) = found.doubts
    assert doubt.key == "credentials.without_scope" and doubt.promise == "403 scope_not_granted"
    assert all(cause in doubt.message for cause in BOTH_CAUSES), doubt.message
    assert found.doubted("credentials.without_scope") is doubt and found.doubted("credentials.valid") is None
    assert f"doubt: {doubt}" in found.lines() and not any(IPS_ONLY in line for line in found.lines())


def test_a_without_scope_token_that_is_the_valid_one_is_still_a_setup_problem(tmp_path: Path) -> None:
    """One secret under two keys is certainly the setup's: a problem (exit 6), and no doubt besides."""
    found = preflight_of(edited(tmp_path, **{"credentials.without_scope": VALID}))
    assert [problem for problem in found.problems if "credentials.without_scope is the same secret as credentials.valid" in problem]
    assert found.doubts == []


@pytest.mark.parametrize("valid", [VALID, IPS_ONLY], ids=["interface-read", "least-privilege"])
def test_the_preflight_probes_name_objects_that_do_not_exist(valid: str, tmp_path: Path) -> None:
    """Every allocate_ip and unallocate the preflight sends, every key given (least privilege too), names an IP no target has:
    it passes argument checks and changes nothing."""
    clock = VirtualClock()
    mock = ReferenceMock(load_world(DEFAULT_WORLD), clock=clock)
    target = mock_target(mock, clock)
    posts: list[bytes] = []
    target.observers.append(lambda response: posts.append(response.request.content) if response.request.method == "POST" else None)
    try:
        found = preflight(target, load_target_fixtures(edited(tmp_path, **{"credentials.valid": valid}), environ={}))
    finally:
        target.close()
    assert found.ok and found.doubts == []
    assert posts and all(PROBE_IP_ID.encode() in body for body in posts), posts
    assert all(ip.allocated_to == mock.pristine.ips[ip.id].allocated_to for ip in mock.world.ips.values())


def test_doctor_says_usable_with_doubts_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`doctor` prints each doubt and `setup usable, 1 doubt(s)`, exit 1 (a run would fail that promise); never the secret."""
    with served() as (url, _):
        code = doctor.main(["--target-url", url, "--target-fixtures", str(edited(tmp_path, **{"credentials.without_scope": IPS_ONLY}))])
    shown = capsys.readouterr().out
    assert code == FAILED, shown
    assert "setup usable, 1 doubt(s)" in shown and "doubt: credentials.without_scope is served past the scope check" in shown
    assert IPS_ONLY not in shown


def test_the_shipped_fixtures_pass_with_every_new_key_checked() -> None:
    """The mock's fixtures name every new key: no problem, no doubt, within the 20 requests, and the foreign IP's starting holder."""
    found = preflight_of(MOCK_TARGET_YAML)
    assert found.problems == [] and found.doubts == [] and found.notes == []
    assert 0 < found.requests <= 20
    assert found.foreign_holders == {FOREIGN_IP: None}


def test_an_unknown_read_only_token_is_a_setup_problem(tmp_path: Path) -> None:
    """A read-only token the server does not know is certainly the setup's: exit 6, naming the key."""
    found = preflight_of(edited(tmp_path, **{"credentials.read_only": "kmock-unknown-00000001"}))
    assert found.problems == ["credentials.read_only is refused as invalid_api_token: the token is unknown or expired; renew it"
                              f" (in {tmp_path / 'target-edited.yaml'})"]
    assert found.doubts == []


def test_a_read_only_token_holding_the_scope_is_a_doubt_of_its_promise(tmp_path: Path) -> None:
    """Served past allocate_ip's scope (and unallocate's): the token holds ip_addresses, or the server takes the read scope for it."""
    found = preflight_of(edited(tmp_path, **{"credentials.read_only": IPS_ONLY}))
    (doubt,) = found.doubts
    assert (doubt.key, doubt.promise) == ("credentials.read_only", "read-only token refused") and found.problems == []
    assert "either the token holds ip_addresses" in doubt.message and "or the server takes ip_addresses:read" in doubt.message


def test_a_read_only_token_that_cannot_read_is_a_doubt_of_its_promise(tmp_path: Path) -> None:
    """Refused a read for scope: the token lacks ip_addresses:read, or the server refuses the read scope; a doubt, not a problem."""
    scopeless = Token("kmock-scopeless-0000001", ())
    found = preflight_of(edited(tmp_path, **{"credentials.read_only": scopeless.token}), tokens=(scopeless,))
    (doubt,) = found.doubts
    assert (doubt.key, doubt.promise) == ("credentials.read_only", "read-only token refused") and found.problems == []
    assert "either the token lacks ip_addresses:read" in doubt.message and "or the server refuses the read scope" in doubt.message


OWN_IP = {"id": "ip_mockFree000000003", "address": "2a03:2800:b:1::42"}


def test_another_organizations_ip_the_valid_token_can_read_is_a_doubt(tmp_path: Path) -> None:
    """An "other organization" IP credentials.valid reads: a fixture mistake or a leaking read path, named both; not a problem."""
    found = preflight_of(edited(tmp_path, **{"other_organization.ip_address": OWN_IP, "credentials.other_organization": None}))
    (doubt,) = found.doubts
    assert (doubt.key, doubt.promise) == ("other_organization.ip_address", "another organization's IP not found") and found.problems == []
    assert "either it is not another organization's IP" in doubt.message
    assert "or the server lets one organization read another's IPs" in doubt.message


@pytest.mark.parametrize("valid", [VALID, IPS_ONLY], ids=["interface-read", "least-privilege"])
def test_another_organizations_interface_the_valid_token_finds_is_a_doubt(valid: str, tmp_path: Path) -> None:
    """Read where the token may read interfaces, else looked up by allocate_ip with an IP no target has: found, it is a doubt."""
    path = edited(tmp_path, **{"other_organization.network_interface": {"id": "vmnet_mockBravo000001"},
                               "credentials.other_organization": None, "credentials.valid": valid})
    found = preflight_of(path)
    (doubt,) = found.doubts
    assert (doubt.key, doubt.promise) == ("other_organization.network_interface", "another organization's interface not found")
    assert "either it is not another organization's interface" in doubt.message and found.problems == []
    assert found.requests <= 20


@pytest.mark.parametrize(("values", "expected"), [
    ({"other_organization.ip_address": OWN_IP},
     "other_organization.ip_address ip_mockFree000000003 does not exist for credentials.other_organization (404 ip_address_not_found)"),
    ({"other_organization.network_interface": {"id": "vmnet_mockAlpha000001"}},
     "other_organization.network_interface vmnet_mockAlpha000001 does not exist for credentials.other_organization"),
    ({"other_organization.ip_address": {"id": "ip_mockForeign000001", "address": "185.199.221.99"}},
     "other_organization.ip_address ip_mockForeign000001 has the address 185.199.221.30, not 185.199.221.99"),
    ({"credentials.other_organization": "kmock-unknown-00000001"}, "credentials.other_organization is refused as invalid_api_token"),
], ids=["ip-not-theirs", "interface-not-theirs", "wrong-address", "unknown-token"])
def test_another_organizations_objects_missing_for_its_own_token_are_a_setup_problem(values: dict[str, Any], expected: str,
                                                                                    tmp_path: Path) -> None:
    """With credentials.other_organization, the foreign objects must exist for it: else their ids are certainly wrong (exit 6)."""
    found = preflight_of(edited(tmp_path, **values))
    assert [problem for problem in found.problems if problem.startswith(expected)], found.problems


# Mutants whose deviation the wire cannot tell from a setup mistake with the shipped fixtures: the preflight's doubts.
DOUBTED_BY = {"every-operation-ignores-scopes": {"credentials.without_scope", "credentials.read_only"},
              "another-organizations-ip-readable": {"other_organization.ip_address"}}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_no_mutant_is_blamed_on_the_setup_and_a_doubt_fails_a_promise_the_mutant_breaks(name: str) -> None:
    """With the shipped fixtures, no mutant is a setup problem; where one is a doubt, the doubt fails a promise it breaks."""
    found = preflight_of(MOCK_TARGET_YAML, name)
    assert found.problems == []
    assert {doubt.key for doubt in found.doubts} == DOUBTED_BY.get(name, set()), found.doubts
    assert all(doubt.promise in MUTANTS[name].breaks for doubt in found.doubts)
    assert found.requests <= 20


# --- the run ----------------------------------------------------------------------------------------------------------
def test_a_doubted_without_scope_token_fails_its_promise_and_sends_nothing_that_could_change_state(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Live: the tests run (exit 1, not 6); 403 scope_not_granted fails with the preflight's finding naming both causes; the
    scenarios that use the token are not run, and every request made with it is one of the preflight's probes."""
    with served() as (url, seen):
        result, report = live_run(pytester, url, edited(tmp_path, **{"credentials.without_scope": IPS_ONLY}), "-k", "scope or every_response")
    output = result.stdout.str()
    assert result.ret == FAILED, output[-3000:]
    assert "setup usable, 1 doubt(s)" in output and "katapult-conformance setup problem" not in output
    assert verdicts(report)["403 scope_not_granted"] == "fails"
    (finding,) = [finding for finding in report["findings"] if finding["promise"] == "403 scope_not_granted"]
    assert finding["check"] == "preflight doubt" and all(cause in finding["received"] for cause in BOTH_CAUSES)
    outcomes = {test["test"]: (test["outcome"], test["reason"]) for promise in report["promises"] for test in promise["tests"]}
    for name in ("test_scenario[scope-not-granted]", "test_scenario[order-no-scope-broken-body]", "test_auth_before_arguments[without_scope]"):
        outcome, reason = outcomes[name]
        assert outcome == "skipped" and "the preflight doubts credentials.without_scope" in reason, (name, outcome, reason)
    assert outcomes["test_every_response_conforms"][0] == "passed"
    assert probes_only(seen.sent_with(IPS_ONLY)), seen.sent_with(IPS_ONLY)
    assert "conformance::promise[403 scope_not_granted]" in output
    assert IPS_ONLY not in output


# --- the mock's world: a second organization, a read-only token ------------------------------------------------------
def test_another_organizations_objects_are_not_found_by_this_worlds_tokens(mock_api: Target, reference_mock: ReferenceMock) -> None:
    """The valid token finds neither the foreign IP (by id or address) nor the foreign interface; nothing changes; its own token reads both."""
    valid, other = Credential.bearer("valid", VALID), Credential.bearer("other_organization", OTHER_ORGANIZATION)
    read = mock_api.send("GET", "/ip_addresses/ip_address", credential=valid, params={"ip_address[id]": FOREIGN_IP.id})
    assert (read.status_code, error_code(read)) == (404, "ip_address_not_found")
    for lookup in ({"id": FOREIGN_IP.id}, {"address": FOREIGN_IP.address}):
        refused = api.allocate(mock_api, valid, ALPHA, lookup)
        assert (refused.status_code, error_code(refused)) == (404, "ip_address_not_found"), lookup
    refused = api.allocate(mock_api, valid, FOREIGN_INTERFACE, {"id": FREE.id})
    assert (refused.status_code, error_code(refused)) == (404, "virtual_machine_network_interface_not_found")
    assert api.read_interface(mock_api, valid, FOREIGN_INTERFACE).status_code == 404
    assert all(ip.allocated_to == reference_mock.pristine.ips[ip.id].allocated_to for ip in reference_mock.world.ips.values())
    assert api.holder_of(mock_api, other, FOREIGN_IP) is None
    assert api.read_interface(mock_api, other, FOREIGN_INTERFACE).status_code == 200
    mine = mock_api.send("GET", "/ip_addresses/ip_address", credential=other, params={"ip_address[id]": FREE.id})
    assert (mine.status_code, error_code(mine)) == (404, "ip_address_not_found")


def test_a_read_only_token_may_read_but_not_allocate(mock_api: Target, reference_mock: ReferenceMock) -> None:
    """ip_addresses:read: 403 scope_not_granted naming ip_addresses on allocate_ip (nothing allocated), 200 on GET ip_address."""
    read_only = Credential.bearer("read_only", READ_ONLY)
    refused = api.allocate(mock_api, read_only, ALPHA, {"id": FREE.id})
    assert (refused.status_code, error_code(refused), error_detail(refused)) == (403, "scope_not_granted", {"scopes": ["ip_addresses"]})
    assert reference_mock.world.ips[FREE.id].allocated_to is None
    assert api.holder_of(mock_api, read_only, FREE) is None


def test_a_world_file_from_before_organizations_still_loads(tmp_path: Path) -> None:
    """A world naming no organization anywhere: every token, interface and IP is the world's own, and the valid token sees them all."""
    raw = yaml.safe_load(DEFAULT_WORLD.read_text(encoding="utf-8"))
    del raw["organization"]
    raw["tokens"] = [token for token in raw["tokens"] if "organization" not in token]
    raw["network_interfaces"] = [interface for interface in raw["network_interfaces"] if "organization" not in interface]
    raw["ip_addresses"] = [ip for ip in raw["ip_addresses"] if "organization" not in ip]
    path = tmp_path / "old-world.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    world = load_world(path)
    assert {token.organization for token in world.tokens.values()} == {HOME_ORGANIZATION}
    assert {ip.organization for ip in world.ips.values()} == {HOME_ORGANIZATION}
    clock = VirtualClock()
    target = mock_target(ReferenceMock(world, clock=clock), clock)
    try:
        assert api.allocate(target, Credential.bearer("valid", VALID), ALPHA, {"id": FREE.id}).status_code == 200
    finally:
        target.close()


# --- the target fixtures' new keys ---------------------------------------------------------------------------------------
def with_keys(tmp_path: Path, text: str) -> Path:
    """A fixtures file: the valid token, the interface, and `text`."""
    path = tmp_path / "target.yaml"
    path.write_text("credentials:\n  valid: kc-test-token-00000000\nnetwork_interface: {id: vmnet_test0000000001}\n" + text, encoding="utf-8")
    return path


def test_the_new_keys_are_read_and_unset_ones_are_absent(tmp_path: Path) -> None:
    """other_organization and the two credentials, from the file and the environment; an unset variable leaves its entry absent."""
    text = ("other_organization:\n  ip_address: {id: ip_f0000000000001, address: 192.0.2.7}\n  network_interface: {id: vmnet_f000000000001}\n"
            "credentials:\n  valid: kc-test-token-00000000\n  read_only: ${KC_READ_ONLY}\n  other_organization: ${KC_OTHER}\n")
    path = tmp_path / "target.yaml"
    path.write_text("network_interface: {id: vmnet_test0000000001}\n" + text, encoding="utf-8")
    given = load_target_fixtures(path, environ={"KC_READ_ONLY": "kc-read-only-0000001", "KC_OTHER": "kc-other-0000001"})
    assert given.other_organization == OtherOrganization(IPRef("ip_f0000000000001", "192.0.2.7"), "vmnet_f000000000001")
    assert given.foreign_ip() == IPRef("ip_f0000000000001", "192.0.2.7") and given.foreign_interface() == "vmnet_f000000000001"
    assert {"read_only", "other_organization"} <= set(given.credentials) and given.opted_out == frozenset()
    unset = load_target_fixtures(path, environ={})
    assert "read_only" not in unset.credentials and "other_organization" not in unset.credentials
    bare = load_target_fixtures(with_keys(tmp_path, ""), environ={})
    with pytest.raises(Exception, match=r"needs other_organization.ip_address in the target fixtures"):
        bare.foreign_ip()
    with pytest.raises(Exception, match=r"needs other_organization.network_interface in the target fixtures"):
        bare.foreign_interface()


def test_false_opts_out_of_the_new_promises(tmp_path: Path) -> None:
    """`other_organization: false` and `credentials.read_only: false` are choices, said as the setting."""
    path = tmp_path / "target.yaml"
    path.write_text("credentials:\n  valid: kc-test-token-00000000\n  read_only: false\nnetwork_interface: {id: vmnet_test0000000001}\n"
                    "other_organization: false\n", encoding="utf-8")
    fixtures = load_target_fixtures(path, environ={})
    assert fixtures.opted_out == {"credentials.read_only", "other_organization"}
    assert fixtures.opt_out("other_organization") == "other_organization: false"
    assert fixtures.opt_out("credentials.read_only") == "credentials.read_only: false"
    assert fixtures.other_organization is None and "read_only" not in fixtures.credentials
    assert load_target_fixtures(with_keys(tmp_path, ""), environ={}).opt_out("other_organization") is None


@pytest.mark.parametrize(("text", "message"), [
    ("other_organization: true\n", "other_organization must be a mapping {ip_address: {id, address}, network_interface: {id}},"
                                    " or false to opt out of its promises"),
    ("other_organization: {ip_address: ip_f0000000000001}\n", "other_organization.ip_address must be a mapping"),
    ("other_organization: {ip_address: {id: ip_f0000000000001}}\n", "other_organization.ip_address needs both id and address"),
    ("other_organization: {network_interface: {id: 12}}\n", "other_organization.network_interface.id must be a string"),
    ("other_organization: {vm: {id: vm_x}}\n", "unknown key other_organization.vm (known keys: ip_address, network_interface)"),
    ("credentials:\n  valid: kc-test-token-00000000\n  other_organization: false\n",
     "credentials.other_organization must be a token string or a mapping {headers: {Name: value}}"),
])
def test_a_mistyped_new_key_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    """Each mistyped new key stops with one line naming the file, the key and what it must be."""
    with pytest.raises(FixturesError) as error:
        load_target_fixtures(with_keys(tmp_path, text), environ={})
    assert message in str(error.value) and str(tmp_path) in str(error.value) and "\n" not in str(error.value)


# --- the new promises, run -----------------------------------------------------------------------------------------------
NEW_TESTS = ("test_read_only_token_may_not_allocate", "test_another_organizations_ip_is_not_found[id]",
             "test_another_organizations_ip_is_not_found[address]", "test_fixture_ip_to_another_organizations_interface_is_not_found")
NEW_PROMISES = ("read-only token refused", "another organization's IP not found", "another organization's interface not found")


def in_process_run(pytester: pytest.Pytester, fixtures: Path, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """The suite in this process against the embedded mock, with its JSON report."""
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess("--pyargs", "conformance", "-p", "no:cacheprovider", "--target-fixtures", str(fixtures),
                                          "--conformance-report", str(report), *args)
    return result, json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}


def outcomes_of(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each test's outcome and reason in a JSON report."""
    return {test["test"]: (test["outcome"], test["reason"]) for promise in report["promises"] for test in promise["tests"]}


def findings_of(report: dict[str, Any], promise: str) -> list[dict[str, Any]]:
    """The findings a JSON report charges to one promise."""
    return [finding for finding in report["findings"] if finding["promise"] == promise]


FOREIGN_BOTH_CAUSES = ("either it is not another organization's IP", "or the server lets one organization read another's IPs")


def test_the_new_promises_conform_on_the_faithful_mock(pytester: pytest.Pytester) -> None:
    """In process, with the shipped fixtures: each new scenario runs and its promise conforms."""
    result, report = in_process_run(pytester, MOCK_TARGET_YAML, "-k", "test_authorization")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert {test: outcome for test, (outcome, _) in outcomes_of(report).items() if test in NEW_TESTS} == dict.fromkeys(NEW_TESTS, "passed")
    assert all(verdicts(report)[promise] == "conforms" for promise in NEW_PROMISES)


def test_the_new_keys_unset_skip_naming_them(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Without the new keys, each new scenario is skipped with a reason naming the key it needs, and its promise is not provoked."""
    path = edited(tmp_path, **{"credentials.read_only": None, "credentials.other_organization": None, "other_organization": None})
    result, report = in_process_run(pytester, path, "-k", "test_authorization")
    assert result.ret == 0, result.stdout.str()[-3000:]
    outcomes = outcomes_of(report)
    for test, key in zip(NEW_TESTS, ("credentials.read_only", "other_organization.ip_address", "other_organization.ip_address",
                                     "other_organization.network_interface"), strict=True):
        outcome, reason = outcomes[test]
        assert outcome == "skipped" and reason.startswith(f"needs {key} in the target fixtures"), (test, outcome, reason)
    assert all(verdicts(report)[promise] == "not provoked" for promise in NEW_PROMISES)


def test_a_fixture_naming_an_ip_the_valid_token_reads_as_another_organizations_is_a_finding_naming_both_causes(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """In process and live, an "other organization" IP that credentials.valid can read fails its promise naming both causes:
    never exit 6, never green, and no allocation of it is asked for."""
    path = edited(tmp_path, **{"other_organization.ip_address": OWN_IP, "credentials.other_organization": None})
    selection = ("-k", "another_organizations_ip")
    in_process, report = in_process_run(pytester, path, *selection)
    assert in_process.ret == FAILED, in_process.stdout.str()[-3000:]
    (finding,) = findings_of(report, "another organization's IP not found")
    assert finding["check"] == "organization isolation" and all(cause in finding["received"] for cause in FOREIGN_BOTH_CAUSES)
    with served() as (url, seen):
        live, report = live_run(pytester, url, path, *selection)
    assert live.ret == FAILED, live.stdout.str()[-3000:]
    assert "setup usable, 1 doubt(s)" in live.stdout.str()
    (finding,) = findings_of(report, "another organization's IP not found")
    assert finding["check"] == "preflight doubt" and all(cause in finding["received"] for cause in FOREIGN_BOTH_CAUSES)
    for test in NEW_TESTS[1:3]:
        outcome, reason = outcomes_of(report)[test]
        assert outcome == "skipped" and "the preflight doubts other_organization.ip_address" in reason, (test, outcome, reason)
    asked = [body for _, method, path, body in seen.requests if method == "POST" and path.endswith("/allocate_ip")]
    assert not [body for body in asked if OWN_IP["id"].encode() in body or OWN_IP["address"].encode() in body]


def upgraded_ci_fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **opt_outs: Any) -> Path:
    """A README CI job's ci/staging.yaml from before the new keys (what `init ci` wrote then), filled in with the mock's ids, its
    secrets in the environment as the job sets them; `opt_outs` are added to it."""
    data: dict[str, Any] = yaml.safe_load(data_path("fixtures", "staging.example.yaml").read_text(encoding="utf-8"))
    for key in ("read_only", "other_organization"):
        data["credentials"].pop(key)
    data.pop("other_organization")
    mock = load_target_fixtures(MOCK_TARGET_YAML, environ={})
    held, private = mock.ip("allocated_elsewhere"), mock.ip("invalid_for_interface")
    data["network_interface"]["id"], data["other_network_interface"]["id"] = mock.network_interface_id, mock.other_network_interface_id
    data["ip_addresses"] = {"allocatable": [{"id": ip.id, "address": ip.address} for ip in mock.allocatable[:2]],
                            "allocated_elsewhere": {"id": held.id, "address": held.address},
                            "invalid_for_interface": {"id": private.id, "address": private.address}}
    for dotted, value in opt_outs.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    for variable, key in (("KATAPULT_API_TOKEN", "valid"), ("KATAPULT_TOKEN_WITHOUT_SCOPE", "without_scope"),
                          ("KATAPULT_TOKEN_NETWORK_RESTRICTED", "network_restricted"), ("KATAPULT_INVALID_CAPABILITIES", "invalid_capabilities")):
        monkeypatch.setenv(variable, mock.credential(key).headers["Authorization"].removeprefix("Bearer "))
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


GATE = ("--require-complete", "--strict-baseline", "--conformance-max-examples", "1")


def test_an_upgraded_ci_job_without_the_new_keys_is_red_naming_each_key_and_its_opt_out(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README job's gate (--require-complete) on fixtures from before the new keys: red, and its one line says, for each
    new promise, the key to set and the opt-out."""
    result, report = in_process_run(pytester, upgraded_ci_fixtures(tmp_path, monkeypatch), *GATE)
    output = result.stdout.str()
    assert result.ret == FAILED, output[-3000:]
    (line,) = [line for line in output.splitlines() if line.startswith("run fails:")]
    assert line.startswith("run fails: 3 promise(s) not judged (--require-complete):"), line
    for expected in ("read-only token refused not provoked (set credentials.read_only in the target fixtures, or opt out with"
                     " credentials.read_only: false)",
                     "another organization's IP not found not provoked (set other_organization.ip_address in the target fixtures,"
                     " or opt out with other_organization: false)",
                     "another organization's interface not found not provoked (set other_organization.network_interface in the"
                     " target fixtures, or opt out with other_organization: false)"):
        assert expected in line, line
    assert [promise["promise"] for promise in report["not_judged"]] == list(NEW_PROMISES)


def test_an_upgraded_ci_job_that_opts_out_is_green(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same job with `credentials.read_only: false` and `other_organization: false`: green, the new promises opted out."""
    path = upgraded_ci_fixtures(tmp_path, monkeypatch, **{"credentials.read_only": False, "other_organization": False})
    result, report = in_process_run(pytester, path, *GATE)
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert {promise: verdicts(report)[promise] for promise in NEW_PROMISES} == dict.fromkeys(NEW_PROMISES, "opted out")
    assert report["status"] == "passed" and report["complete"]


# --- the mutants: each new one caught live and charged to its promise ------------------------------------------------
FRAMEWORK_WIDE = ("every-operation-arguments-before-authentication", "every-operation-scope-after-arguments", "every-operation-ignores-scopes")
NEW_MUTANTS = ("read-scope-allocates", "another-organizations-ip-allocated", "allocated-to-another-organizations-interface",
               "another-organizations-ip-readable", *FRAMEWORK_WIDE)
# What judges them (and the scope and order-of-checks scenarios the framework-wide ones break): a live run of seconds.
SELECTED = ("-k", "test_scenario and (order or scope) or test_authorization")
# The promise each framework-wide mutant must fail live, with a correct without_scope token (the preflight stopped such runs).
MUST_FAIL = {"every-operation-arguments-before-authentication": "order of checks", "every-operation-scope-after-arguments": "order of checks",
             "every-operation-ignores-scopes": "403 scope_not_granted"}


@pytest.mark.parametrize("mutant", ["faithful", *NEW_MUTANTS])
def test_each_new_mutant_is_caught_live_and_charged_to_its_promise(mutant: str, pytester: pytest.Pytester) -> None:
    """Over loopback HTTP with the shipped fixtures: the faithful mock is green; each new mutant exits 1 (never 6), with failing
    JUnit cases, and both reports fail only promises its deviation breaks."""
    breaks = mock_class(mutant).breaks
    junit = pytester.path / "junit.xml"
    with served(None if mutant == "faithful" else mutant) as (url, _):
        result, report = live_run(pytester, url, MOCK_TARGET_YAML, *SELECTED, "--junitxml", str(junit),
                                  "--conformance-report", str(pytester.path / "report.md"))
    output = result.stdout.str()
    failing = [promise for promise, verdict in verdicts(report).items() if verdict == "fails"]
    failed_cases = runner.parse_junit(junit).failed
    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    if mutant == "faithful":
        assert result.ret == 0 and failing == [] and failed_cases == [], output[-3000:]
        return
    assert result.ret == FAILED, output[-3000:]
    assert failing and set(failing) <= set(breaks), (failing, breaks)
    assert failed_cases and all(f"| {promise} | **fails** |" in markdown for promise in failing)
    if mutant in MUST_FAIL:
        assert MUST_FAIL[mutant] in failing, failing


def test_another_organizations_ip_left_allocated_is_named_with_the_command_that_puts_it_back(pytester: pytest.Pytester) -> None:
    """The foreign IP a broken server allocated to the fixture interface: the finding says so, that credentials.valid could not
    put it back, and the command for the other organization's token (its variable, never its value); cleanup fails too."""
    with served("another-organizations-ip-allocated") as (url, _):
        result, report = live_run(pytester, url, MOCK_TARGET_YAML, "-k", "another_organizations_ip and id")
    assert result.ret == FAILED, result.stdout.str()[-3000:]
    (finding,) = findings_of(report, "another organization's IP not found")
    assert (f"another organization's IP {FOREIGN_IP.id} ({FOREIGN_IP.address}) is now allocated to your interface {ALPHA}"
            in finding["received"]), finding["received"]
    assert "the suite could not put it back (unallocate with credentials.valid answered 404 ip_address_not_found)" in finding["received"]
    assert "Bearer ${CREDENTIALS_OTHER_ORGANIZATION}" in finding["received"] and OTHER_ORGANIZATION not in json.dumps(report)
    assert verdicts(report)["cleanup"] == "fails"


@pytest.mark.parametrize("mutant", FRAMEWORK_WIDE)
def test_against_a_framework_wide_fault_a_without_scope_token_equal_to_the_valid_one_still_exits_6(
        mutant: str, pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The certain mix-up stays certain whatever the server's order of checks: exit 6 before any test, its line, no secret."""
    with served(mutant) as (url, _):
        result, _ = live_run(pytester, url, edited(tmp_path, **{"credentials.without_scope": VALID}))
    output = result.stdout.str()
    assert result.ret == SETUP, output[-3000:]
    assert "katapult-conformance setup problem: credentials.without_scope is the same secret as credentials.valid" in output
    assert VALID not in output and "passed" not in output


def test_against_a_server_ignoring_scopes_everywhere_the_scope_tokens_are_doubts_and_their_scenarios_not_run(
        pytester: pytest.Pytester) -> None:
    """Both tokens documented as lacking ip_addresses are doubts: each promise fails naming both causes, and every request made
    with either token is one of the preflight's probes."""
    with served("every-operation-ignores-scopes") as (url, seen):
        result, report = live_run(pytester, url, MOCK_TARGET_YAML, *SELECTED)
    assert result.ret == FAILED and "setup usable, 2 doubt(s)" in result.stdout.str(), result.stdout.str()[-3000:]
    for promise in ("403 scope_not_granted", "read-only token refused"):
        (finding,) = findings_of(report, promise)
        assert finding["check"] == "preflight doubt" and "either the token holds ip_addresses" in finding["received"]
    outcome, reason = outcomes_of(report)["test_read_only_token_may_not_allocate"]
    assert outcome == "skipped" and "the preflight doubts credentials.read_only" in reason
    for token in ("kmock-noscope-2b8f4e61c3", READ_ONLY):
        assert probes_only(seen.sent_with(token)), seen.sent_with(token)
