"""Reproduce lines send what the test sent: each credential by its own variable, the made-up token as it was, the run's own mock.

Every block a mutant's run prints is also sent to a mock of that mutant by tests/test_matrix.py; these are the rules one by one.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from helpers import MOCK_TARGET_YAML

from conformance.cases.identities import identity_headers
from conformance.gate.keys import CONFIG_KEY, SEED_KEY
from conformance.gate.plugin import reproduce_command
from conformance.mock.inprocess import embedded_target
from conformance.mock.world import DEFAULT_WORLD
from conformance.setup.fixtures import TargetFixtures, load_target_fixtures
from conformance.setup.references import NAMES
from conformance.setup.settings import build_config
from conformance.wire import api
from conformance.wire.exchange import curl_line, reproduce_lines
from conformance.wire.paths import ALLOCATE_PATH

NO_SCOPE, VALID = "kmock-noscope-2b8f4e61c3", "kmock-valid-7d1e0c5a9b"
URL = f"https://api.staging.example.test/core/v1{ALLOCATE_PATH}"
BODY = b'{"virtual_machine_network_interface": {"id": "vmnet_mockAlpha000001"}, "ip_address": {"id": "ip_mockFree000000001"}}'


@pytest.fixture
def from_environment(tmp_path: Path) -> Iterator[TargetFixtures]:
    """The mock's fixtures with valid and without_scope read from ${KC_TEST_VALID} and ${KC_TEST_NO_SCOPE}, named for this test."""
    path = tmp_path / "target.yaml"
    text = MOCK_TARGET_YAML.read_text(encoding="utf-8").replace(f"valid: {VALID}", "valid: ${KC_TEST_VALID}")
    path.write_text(text.replace(f"without_scope: {NO_SCOPE}", "without_scope: ${KC_TEST_NO_SCOPE}"), encoding="utf-8")
    fixtures = load_target_fixtures(path, environ={"KC_TEST_VALID": VALID, "KC_TEST_NO_SCOPE": NO_SCOPE})
    restore = NAMES.use(fixtures)
    yield fixtures
    restore()


@pytest.fixture
def inline() -> Iterator[TargetFixtures]:
    """The mock's own fixtures (tokens written inline), named for this test."""
    fixtures = load_target_fixtures(MOCK_TARGET_YAML, environ={})
    restore = NAMES.use(fixtures)
    yield fixtures
    restore()


def request_as(headers: dict[str, str], url: str = URL) -> httpx.Request:
    """An allocate_ip request presenting these headers."""
    return httpx.Request("POST", url, headers={**headers, "Content-Type": "application/json"}, content=BODY)


def test_a_credential_is_sent_as_its_own_variable(from_environment: TargetFixtures) -> None:
    """credentials.without_scope from ${KC_TEST_NO_SCOPE}: the curl sends that variable, not the valid token's, never the value."""
    line = curl_line(request_as(identity_headers("without_scope", from_environment, "run1")))
    assert '-H "authorization: Bearer ${KC_TEST_NO_SCOPE}"' in line
    assert "KATAPULT_API_TOKEN" not in line and "KC_TEST_VALID" not in line and NO_SCOPE not in line
    # `Token <valid token>` (a scheme other than Bearer) keeps its scheme and names the valid token's variable.
    assert '-H "authorization: Token ${KC_TEST_VALID}"' in curl_line(request_as(identity_headers("non_bearer", from_environment, "run1")))


def test_the_suites_made_up_token_is_sent_as_it_was(from_environment: TargetFixtures) -> None:
    """The token no target has is the suite's own: printed as sent, so the reproduction is refused as the test's request was."""
    line = curl_line(request_as(identity_headers("random", from_environment, "run1")))
    assert "-H 'authorization: Bearer kc-conformance-nonexistent-run1'" in line


def test_a_credential_written_inline_is_a_placeholder_named_after_its_key(inline: TargetFixtures) -> None:
    """A token written in the file: the curl names $CREDENTIALS_<KEY>, and a line above it says where its value is."""
    lines = reproduce_lines(request_as(identity_headers("without_scope", inline, "run1")))
    assert lines[0] == f"# set CREDENTIALS_WITHOUT_SCOPE to credentials.without_scope in {MOCK_TARGET_YAML} (written there inline)"
    assert '"authorization: Bearer ${CREDENTIALS_WITHOUT_SCOPE}"' in lines[-1] and NO_SCOPE not in "\n".join(lines)


def test_a_credential_no_fixtures_named_is_redacted() -> None:
    """Outside a run (replay judges recorded traffic) a token is nobody's variable: shown as [redacted], never sent as another."""
    line = curl_line(request_as({"Authorization": "Bearer recorded-token-0123456789"}))
    assert "-H 'authorization: Bearer [redacted]'" in line and "recorded-token" not in line


def test_a_reproduction_that_allocates_says_so_and_ends_with_the_put_back(from_environment: TargetFixtures) -> None:
    """A 200 from allocate_ip allocates again when sent again: a line says so, and the last one unallocates it as credentials.valid."""
    request = request_as(identity_headers("without_scope", from_environment, "run1"))
    lines = reproduce_lines(request, httpx.Response(200, request=request))
    assert lines[0] == '# it allocates the IP {"id": "ip_mockFree000000001"}, as it did in the test: the last line puts it back'
    assert lines[1] == curl_line(request)
    assert lines[2] == ("curl -sS -X POST 'https://api.staging.example.test/core/v1/ip_addresses/ip_address/unallocate'"
                        ' -H "Authorization: Bearer ${KC_TEST_VALID}" -H \'Content-Type: application/json\''
                        ' -d \'{"ip_address": {"id": "ip_mockFree000000001"}}\'')
    refused = reproduce_lines(request, httpx.Response(403, request=request))
    assert refused == [curl_line(request)]


def test_the_in_process_mock_is_served_as_the_run_had_it(inline: TargetFixtures, tmp_path: Path) -> None:
    """The mock line names the run's mutant and world, and the curl sends the token the mock's fixtures give (by its placeholder)."""
    world = tmp_path / "world.yaml"
    world.write_text(DEFAULT_WORLD.read_text(encoding="utf-8"), encoding="utf-8")
    target = embedded_target("invalid-token-401", world, 10.0)
    response = api.allocate(target, inline.credential("valid"), inline.network_interface_id, {"id": "ip_doesNotExist00001"})
    lines = reproduce_lines(response.request, response)
    assert shlex.split(lines[0].split("&")[0]) == ["katapult-conformance", "mock", "--port", "8080", "--mutant", "invalid-token-401",
                                                   "--world", str(world)]
    assert '"authorization: Bearer ${CREDENTIALS_VALID}"' in lines[-1] and "http://127.0.0.1:8080/core/v1/" in lines[-1]
    assert "KATAPULT_API_TOKEN" not in "\n".join(lines)
    faithful = embedded_target(None, None, 10.0)
    response = api.allocate(faithful, inline.credential("valid"), inline.network_interface_id, {"id": "ip_doesNotExist00001"})
    assert reproduce_lines(response.request, response)[0].startswith("katapult-conformance mock --port 8080 &")


def test_the_pytest_line_keeps_every_option_that_shaped_the_run(tmp_path: Path) -> None:
    """The generated tests' command is their own exact one: the fixtures, the mutant, the world, the examples; not the reports."""
    cli = {"target_fixtures": "sub/two.yaml", "mock_mutant": "invalid-token-401", "mock_world": "my world.yaml", "max_examples": "7",
           "report": ["r.md"], "baseline": "b.yaml"}
    stash = pytest.Stash()
    stash[CONFIG_KEY] = build_config(cli, {"KATAPULT_CONFORMANCE_PROFILE": "dev"})
    stash[SEED_KEY] = 1234
    command = reproduce_command(SimpleNamespace(stash=stash), "test_auth_before_arguments[random]")  # type: ignore[arg-type]
    assert shlex.split(command) == ["pytest", "--pyargs", "conformance", "-k", "test_auth_before_arguments[random]",
                                    "--conformance-profile=dev", "--hypothesis-seed=1234", "--target-fixtures=sub/two.yaml",
                                    "--conformance-max-examples=7", "--mock-mutant=invalid-token-401", "--mock-world=my world.yaml"]
