"""Malformed bytes: never a 5xx, and any documented 4xx in the wire's shape, whichever one the server's parser leads to."""
from __future__ import annotations

import httpx
import pytest

from conformance.cases.scenarios import ROWS, Row, RunValues, judge_row, request_for
from conformance.contract.checks import ConformanceFailure
from conformance.mock.app import ApiError, MockRequest, ReferenceMock, VirtualClock
from conformance.mock.inprocess import mock_target
from conformance.mock.mutants import mock_class
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.setup.fixtures import TargetFixtures
from conformance.wire.exchange import error_code
from conformance.wire.transport import Target

pytest_plugins = ["pytester"]

MALFORMED_BYTES = "malformed bytes never crash the server"
MALFORMED = [row for row in ROWS if row.promise == MALFORMED_BYTES]
# What a correct server answers (fact sheet): the real parser does not check strings to be UTF-8, so those reach the lookups.
ON_THE_WIRE = {
    "body-not-utf8": (404, "virtual_machine_network_interface_not_found"),
    "ip-id-not-utf8": (404, "ip_address_not_found"),
    "body-utf16": (400, "invalid_json_body"),
}


class StrictParser(ReferenceMock):
    """Also correct: a JSON library that checks every string is UTF-8 refuses such bodies as invalid_json_body."""

    def parse_body(self, request: MockRequest) -> dict[str, object]:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(400, "invalid_json_body", {"details": str(error)}) from None
        return super().parse_body(request)


class TeapotOnBadBytes(ReferenceMock):
    """A 4xx no documentation has: not a crash, but not a documented answer either."""

    def parse_body(self, request: MockRequest) -> dict[str, object]:
        if b"\xff" in request.body or b"\x00" in request.body:
            raise ApiError(418, "im_a_teapot")
        return super().parse_body(request)


def on(mock: ReferenceMock) -> Target:
    """An in-process target on this mock."""
    clock = VirtualClock()
    mock.clock = clock
    return mock_target(mock, clock)


def send(target: Target, row: Row, fixtures: TargetFixtures) -> httpx.Response:
    """The row's request, as test_scenario sends it."""
    path, content, headers, query = request_for(row, fixtures, RunValues("malformedbytes"))
    return target.send("POST", path, content=content, headers=headers, params=query or None)


def row_ids() -> list[str]:
    return [row.id for row in MALFORMED]


def test_the_rows_send_invalid_utf8_where_it_matters(mock_target_fixtures: TargetFixtures) -> None:
    """Invalid UTF-8 inside a string without an interface, inside a string beside a real interface, and a body that is none of it."""
    assert sorted(row_ids()) == sorted(ON_THE_WIRE)
    for row in MALFORMED:
        _, content, _, _ = request_for(row, mock_target_fixtures, RunValues("malformedbytes"))
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
        assert row.expect is None, f"{row.id} pins {row.expect}"
    _, reaching, _, _ = request_for(next(row for row in MALFORMED if row.id == "ip-id-not-utf8"), mock_target_fixtures, RunValues("x"))
    assert mock_target_fixtures.network_interface_id.encode() in reaching and b'"id": "\xff\xfe"' in reaching


@pytest.mark.parametrize("row", MALFORMED, ids=row_ids())
def test_the_mock_answers_as_the_wire_does_and_the_row_accepts_it(row: Row, mock_api: Target, mock_target_fixtures: TargetFixtures) -> None:
    """The faithful mock lets invalid UTF-8 in strings reach the lookups (404s), and refuses a UTF-16 body as invalid JSON."""
    response = send(mock_api, row, mock_target_fixtures)
    assert (response.status_code, error_code(response)) == ON_THE_WIRE[row.id]
    judge_row(row, response)


@pytest.mark.parametrize("row", MALFORMED, ids=row_ids())
def test_no_one_code_is_pinned(row: Row, mock_target_fixtures: TargetFixtures) -> None:
    """A server whose parser checks UTF-8 answers 400 invalid_json_body instead: as correct, and the row accepts it too."""
    target = on(StrictParser(load_world(DEFAULT_WORLD)))
    try:
        response = send(target, row, mock_target_fixtures)
    finally:
        target.close()
    assert (response.status_code, error_code(response)) == (400, "invalid_json_body")
    judge_row(row, response)


@pytest.mark.parametrize(("mutant", "row_id"), [("500-on-non-utf8-body", "body-not-utf8"), ("500-on-non-utf8-body", "body-utf16"),
                                                ("500-on-non-ascii-id", "ip-id-not-utf8"), ("invalid-json-body-500", "body-utf16")])
def test_a_crash_fails_the_row_under_its_promise(mutant: str, row_id: str, mock_target_fixtures: TargetFixtures) -> None:
    """A 500 where the bytes are parsed, where they reach the lookup, or for a body that is no JSON: the malformed-bytes finding."""
    row = next(row for row in MALFORMED if row.id == row_id)
    target = on(mock_class(mutant)(load_world(DEFAULT_WORLD)))
    try:
        response = send(target, row, mock_target_fixtures)
    finally:
        target.close()
    assert response.status_code == 500
    with pytest.raises(ConformanceFailure) as failure:
        judge_row(row, response)
    assert failure.value.title == "Server error on malformed bytes" and failure.value.promise == MALFORMED_BYTES


def test_an_undocumented_4xx_fails_the_row(mock_target_fixtures: TargetFixtures) -> None:
    """Not crashing is not enough: the answer must be one the documentation has."""
    row = next(row for row in MALFORMED if row.id == "ip-id-not-utf8")
    target = on(TeapotOnBadBytes(load_world(DEFAULT_WORLD)))
    try:
        response = send(target, row, mock_target_fixtures)
    finally:
        target.close()
    with pytest.raises(ConformanceFailure, match="expected a documented 4xx error \\(never a 5xx\\), received 418 im_a_teapot"):
        judge_row(row, response)


def test_a_crash_in_the_lookup_fails_the_scenario_that_reaches_it(pytester: pytest.Pytester) -> None:
    """Through the suite: on a server that crashes on non-ASCII lookup values, the row reaching the IP lookup fails, naming the crash."""
    result = pytester.runpytest_inprocess("--pyargs", "conformance.test_scenarios", "-p", "no:cacheprovider", "-q", "-rf",
                                          "-k", "utf", "--mock-mutant", "500-on-non-ascii-id")
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert any("test_scenario[ip-id-not-utf8]" in line for line in failed), output[-3000:]
    assert not any("body-utf16" in line for line in failed), output[-3000:]
    assert "Server error on malformed bytes" in output
