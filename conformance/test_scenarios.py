"""Hand-written scenarios: each documented promise of allocate_ip, against whichever target is selected."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from conformance import api
from conformance.checks import ConformanceFailure, conforms_to_fragment, error_code, error_detail, expect_error
from conformance.ledger import AllocationLedger
from conformance.plugin import ConformanceSession
from conformance.scenarios import ROWS, Row, RunValues, fill, headers_for, ip_for, judge
from conformance.target import ALLOCATE_PATH, Target
from conformance.targetfile import Credential, IPRef, TargetFixtures

RATE_LIMIT_MARGIN = 20
WINDOW_POLLS = 70


def row_param(row: Row) -> Any:
    """A row as a test parameter, marked with its promise (and "no side effects" when it watches IPs)."""
    promises = (row.promise, "no side effects") if row.watch else (row.promise,)
    return pytest.param(row, marks=pytest.mark.promise(*promises), id=row.id)


@pytest.fixture(scope="session")
def run_values(conformance_session: ConformanceSession) -> RunValues:
    """Made-up ids and tokens for this run."""
    return RunValues(conformance_session.run_id)


@pytest.mark.parametrize("row", [row_param(row) for row in ROWS])
def test_scenario(row: Row, target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger, run_values: RunValues) -> None:
    """One row of the scenario table: provoke, judge, and check that no watched IP moved."""
    headers = headers_for(row, target_fixtures, run_values)
    body = None if row.raw_body is not None else fill(row.body, target_fixtures, run_values)
    watched = [ip_for(target_fixtures, name) for name in row.watch]
    before = {ip: ledger.touch(ip) for ip in watched}
    if row.raw_body is not None:
        headers = {**headers, "Content-Type": "application/json"}
        response = target.send("POST", ALLOCATE_PATH, content=row.raw_body, headers=headers)
    else:
        response = target.send("POST", ALLOCATE_PATH, json=body, headers=headers)
    judge(row, response)
    assert_unchanged(ledger, before, response)


def assert_unchanged(ledger: AllocationLedger, before: dict[IPRef, str | None], response: httpx.Response) -> None:
    """A rejected request left every watched IP with the holder it had."""
    for ip, holder in before.items():
        now = ledger.holder(ip)
        if now != holder:
            raise ConformanceFailure(
                "Rejected request changed an allocation",
                f"{ip.id} ({ip.address}) now held by {now or 'nobody'}",
                f"unchanged: held by {holder or 'nobody'}",
                response,
                promise="no side effects",
            )


def assert_allocated(response: httpx.Response, interface_id: str, ip: IPRef, ledger: AllocationLedger) -> None:
    """A 200 returns the interface asked for, listing the IP (id and address), and the IP is now held by it."""
    conforms_to_fragment(response)
    if response.status_code != 200:
        raise ConformanceFailure("Expected 200", f"{response.status_code} {error_code(response)}", "200 with the interface", response)
    interface = response.json()["virtual_machine_network_interface"]
    if interface["id"] != interface_id:
        raise ConformanceFailure("200 returns another interface", str(interface["id"]), interface_id, response, promise="200 semantics")
    listed = {(item["id"], item["address"]) for item in interface["ip_addresses"]}
    if (ip.id, ip.address) not in listed:
        raise ConformanceFailure(
            "Allocated IP missing from ip_addresses", repr(sorted(listed)), f"contains {ip.id} {ip.address}", response, promise="200 semantics"
        )
    permitted = int(response.headers["X-RateLimit-Permitted"])
    remaining = int(response.headers["X-RateLimit-Remaining"])
    if remaining > permitted:
        raise ConformanceFailure("X-RateLimit-Remaining above X-RateLimit-Permitted", str(remaining), f"<= {permitted}", response)
    holder = ledger.holder(ip)
    if holder != interface_id:
        raise ConformanceFailure(
            "IP not allocated to the interface", f"{ip.id} held by {holder or 'nobody'}", f"held by {interface_id}", response, promise="200 semantics"
        )


@pytest.mark.promise("200 shape", "200 semantics")
@pytest.mark.parametrize("lookup", ["id", "address"])
def test_allocate_free_ip(lookup: str, target: Target, target_fixtures: TargetFixtures, ledger: AllocationLedger) -> None:
    """Allocating a free IP (by id, or by address) returns the interface in the documented shape, now holding it."""
    credential = target_fixtures.credential("valid")
    ip = target_fixtures.allocatable_ip(1 if lookup == "address" and len(target_fixtures.allocatable) > 1 else 0)
    if ledger.touch(ip) is not None:
        pytest.fail(f"{ip.id} ({ip.address}) is listed as allocatable but is already allocated; free it or fix the target fixtures")
    response = api.allocate(target, credential, target_fixtures.network_interface_id, {lookup: getattr(ip, lookup)})
    assert_allocated(response, target_fixtures.network_interface_id, ip, ledger)


@pytest.mark.promise("429 rate_limit_reached")
def test_rate_limit_reached(target: Target, target_fixtures: TargetFixtures, run_values: RunValues) -> None:
    """A burst past the limit gets 429 rate_limit_reached; detail.total_permitted matches X-RateLimit-Permitted."""
    if not target_fixtures.provoke_rate_limit:
        pytest.skip(f"not provoked: needs rate_limit.provoke: true in the target fixtures ({target_fixtures.source})")
    credential = target_fixtures.credential("valid")
    body = api.allocate_body(run_values.value("unknown_interface"), {"id": run_values.value("unknown_ip")})
    first = target.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False)
    permitted = first.headers.get("X-RateLimit-Permitted", "")
    bound = (int(permitted) if permitted.isdigit() else 1000) + RATE_LIMIT_MARGIN
    response = first
    for _ in range(bound):
        if response.status_code == 429:
            break
        response = target.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False)
    try:
        expect_error(response, 429, "rate_limit_reached")
        total = error_detail(response).get("total_permitted")
        header = response.headers.get("X-RateLimit-Permitted")
        if header is not None and str(total) != header:
            raise ConformanceFailure("total_permitted disagrees with X-RateLimit-Permitted", str(total), header, response)
    finally:
        wait_for_new_window(target, credential, body)


def wait_for_new_window(target: Target, credential: Credential, body: dict[str, object]) -> None:
    """Leave the target usable: poll, a second apart, until the token is served again (at most ~70 s)."""
    for _ in range(WINDOW_POLLS):
        target.pacer.sleep(1.0)
        if target.send("POST", ALLOCATE_PATH, credential=credential, json=body, paced=False).status_code != 429:
            return


@pytest.mark.promise("503 service_unavailable")
def test_service_unavailable(target: Target, target_fixtures: TargetFixtures, conformance_session: ConformanceSession) -> None:
    """In maintenance, a valid request gets 503 service_unavailable (mock); on a live target any 503 seen is judged."""
    if target.mock is None:
        seen = conformance_session.seen_503
        if not seen:
            pytest.skip("not provoked: a live target cannot be put into maintenance, and no 503 was seen in this run")
        for response in seen:
            expect_error(response, 503, "service_unavailable")
        return
    credential = target_fixtures.credential("valid")
    ip = target_fixtures.allocatable_ip(0)
    target.mock.maintenance = True
    try:
        response = api.allocate(target, credential, target_fixtures.network_interface_id, {"id": ip.id})
    finally:
        target.mock.maintenance = False
    expect_error(response, 503, "service_unavailable")
