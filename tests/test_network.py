"""A flaky network is not the server's fault (issue #25): a request lost in transport is sent again; only answers are judged.

Faults are injected around the in-process mock's handler, so each case runs in milliseconds on the virtual clock.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from helpers import ServedMock

from conformance.mock.app import ReferenceMock, VirtualClock
from conformance.mock.faults import CLOSED, GATEWAY_PAGE, Faults
from conformance.mock.inprocess import Handler, mock_target
from conformance.setup.fixtures import TargetFixtures
from conformance.wire import api
from conformance.wire.paths import ALLOCATE_PATH, BASE_PATH, READ_IP_PATH
from conformance.wire.retry import RETRIED, Attempt, Lost, RetryPolicy
from conformance.wire.transport import (
    PROBE_PATH,
    AnswerLost,
    BudgetExhausted,
    ConnectionDropped,
    Target,
    TargetGone,
    TargetTimeout,
    TargetUnreachable,
    live_target,
)

Fault = Callable[[httpx.Request], "str | None"]


class Network:
    """A scripted network in front of the mock: `fault(request)` says what happens to each request (None: it goes through)."""

    def __init__(self) -> None:
        self.fault: Fault = lambda request: None
        self.reached: list[str] = []

    def __call__(self, handler: Handler) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            fault = self.fault(request)
            if fault == "refused":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if fault == "before":
                raise httpx.RemoteProtocolError(CLOSED, request=request)
            if fault == "gateway":
                return httpx.Response(502, headers={"Content-Type": "text/html"}, content=GATEWAY_PAGE)
            if fault == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            self.reached.append(f"{request.method} {request.url.path}")
            response = handler(request)
            if fault == "after":
                raise httpx.RemoteProtocolError(CLOSED, request=request)
            return response

        return handle


def times(count: int, fault: str, then: str | None = None) -> Fault:
    """The first `count` requests meet `fault`, the rest `then`."""
    seen = [0]

    def decide(request: httpx.Request) -> str | None:
        seen[0] += 1
        return fault if seen[0] <= count else then

    return decide


@pytest.fixture
def network() -> Network:
    """The scripted network."""
    return Network()


@pytest.fixture
def clock() -> VirtualClock:
    """The virtual clock the target backs off on."""
    return VirtualClock()


@pytest.fixture
def faulty(network: Network, clock: VirtualClock) -> Iterator[Target]:
    """The in-process mock behind the scripted network, 3 retries; it has answered once (the preflight's reads, say)."""
    target = mock_target(ReferenceMock(clock=clock), clock, network=network, retries=3, seed=7)
    target.answered_once = True
    yield target
    target.close()


def read_ip(target: Target, fixtures: TargetFixtures) -> httpx.Response:
    """GET ip_address of the first allocatable IP."""
    return target.send("GET", READ_IP_PATH, credential=fixtures.credential("valid"), params={"ip_address[id]": fixtures.allocatable[0].id})


@pytest.mark.parametrize("fault", ["refused", "before", "after", "gateway"])
def test_a_request_lost_on_the_network_is_sent_again_and_answered(fault: str, faulty: Target, network: Network, clock: VirtualClock,
                                                                 mock_target_fixtures: TargetFixtures) -> None:
    """Refused, closed without an answer (before or after the server acted), or a gateway's page: sent again after a backoff on
    the pacer's clock, each attempt counted as sent and told to the attempt observers; the answer says it was retried."""
    attempts: list[Attempt] = []
    faulty.attempt_observers.append(attempts.append)
    network.fault = times(1, fault)
    response = read_ip(faulty, mock_target_fixtures)
    assert response.status_code == 200
    assert faulty.sent == 2 and clock.now > 0
    assert [(attempt.number, attempt.final, attempt.response is not None) for attempt in attempts] == [(1, False, False), (2, True, True)]
    assert attempts[0].lost is (Lost.GATEWAY if fault == "gateway" else Lost.BEFORE_SENDING if fault == "refused" else Lost.ANSWER_LOST)
    assert response.extensions[RETRIED].attempts == 2
    assert (faulty.health.requests, faulty.health.retried, faulty.health.failed_twice) == (1, 1, 0)
    assert faulty.health.describe() == f"1 of 1 requests retried after {'a gateway' if fault == 'gateway' else 'a dropped connection'}" + (
        "'s error page; none failed twice" if fault == "gateway" else "; none failed twice")


def test_an_answer_with_the_apis_marks_is_never_retried(faulty: Target, network: Network, mock_target_fixtures: TargetFixtures,
                                                        reference_mock: ReferenceMock) -> None:
    """A 503 that is the API's (X-Request-Id, the JSON error envelope) is an answer, judged as it is: sent once."""
    assert faulty.mock is not None
    faulty.mock.maintenance = True
    response = read_ip(faulty, mock_target_fixtures)
    assert response.status_code == 503 and faulty.sent == 1 and faulty.health.retried == 0


def test_a_read_timeout_is_not_sent_again(faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """The server took the request and did not answer in time: that is the server's (a finding), never retried."""
    network.fault = times(1, "timeout")
    with pytest.raises(TargetTimeout):
        read_ip(faulty, mock_target_fixtures)
    assert faulty.sent == 1


def test_retries_count_against_the_budget(faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """Each attempt is a request the target may count: a budget of 2 is spent by one request lost twice."""
    faulty.max_requests = 2
    network.fault = times(2, "before")
    with pytest.raises(BudgetExhausted):
        read_ip(faulty, mock_target_fixtures)
    assert faulty.sent == 2


def test_zero_retries_sends_each_request_once(network: Network, clock: VirtualClock, mock_target_fixtures: TargetFixtures) -> None:
    """--request-retries 0: a lost request is not sent again (it is judged lost, the target answering others)."""
    target = mock_target(ReferenceMock(clock=clock), clock, network=network, retries=0)
    target.answered_once = True
    network.fault = lambda request: "before" if request.url.path != BASE_PATH + PROBE_PATH else None
    with pytest.raises(ConnectionDropped, match="closed the connection, 1 time "):
        read_ip(target, mock_target_fixtures)
    assert target.sent == 2  # the request and the probe


def test_the_backoff_is_jittered_deterministically_per_seed() -> None:
    """Same seed, same waits; they grow, and stay under the cap."""
    waits = [RetryPolicy(3, seed=5).backoff(n) for n in (1, 2, 3)]
    assert waits == [RetryPolicy(3, seed=5).backoff(n) for n in (1, 2, 3)]
    assert waits != [RetryPolicy(3, seed=6).backoff(n) for n in (1, 2, 3)]
    assert 0.25 <= waits[0] < 0.75 and 0.5 <= waits[1] < 1.5 and 1.0 <= waits[2] <= 3.0


def test_a_request_lost_every_time_while_the_target_answers_is_dropped_by_the_server(
        faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """Lost on every attempt while a probe is answered: ConnectionDropped (a finding for that request), saying how many times."""
    network.fault = lambda request: "before" if request.url.path.endswith("/allocate_ip") else None
    attempts: list[Attempt] = []
    faulty.attempt_observers.append(attempts.append)
    with pytest.raises(ConnectionDropped) as dropped:
        faulty.send("POST", ALLOCATE_PATH, json={})
    assert "the server or a proxy in between closed the connection, 4 times" in str(dropped.value)
    assert dropped.value.request.url.path.endswith("/allocate_ip")
    assert [attempt.probe for attempt in attempts] == [False] * 4 + [True]
    assert faulty.gone is None and faulty.health.unanswered == 1
    assert faulty.send("GET", READ_IP_PATH).status_code == 400


def test_a_target_that_stops_answering_is_gone_and_later_requests_fail_at_once(
        faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """Every attempt and the probe refused: TargetGone; nothing more is sent after it."""
    network.fault = lambda request: "refused"
    with pytest.raises(TargetGone, match="stopped answering"):
        read_ip(faulty, mock_target_fixtures)
    sent = faulty.sent
    with pytest.raises(TargetGone):
        read_ip(faulty, mock_target_fixtures)
    assert faulty.sent == sent


def test_three_timeouts_in_a_row_are_a_target_gone(faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """A server that takes requests and never answers them: the third request in a row without an answer stops the run."""
    network.fault = lambda request: "timeout"
    for _ in range(2):
        with pytest.raises(TargetTimeout):
            read_ip(faulty, mock_target_fixtures)
    with pytest.raises(TargetGone):
        read_ip(faulty, mock_target_fixtures)


def test_one_timeout_between_answers_is_only_a_timeout(faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """An answer in between starts the count again (the hang mutants hang once and stay findings)."""
    for _ in range(4):
        network.fault = times(1, "timeout")
        with pytest.raises(TargetTimeout):
            read_ip(faulty, mock_target_fixtures)
        assert read_ip(faulty, mock_target_fixtures).status_code == 200


def test_a_target_that_never_answered_is_unreachable(network: Network, clock: VirtualClock, mock_target_fixtures: TargetFixtures) -> None:
    """No answer ever (a wrong URL, a server down from the start): the old one-line `cannot reach`, after the retries."""
    target = mock_target(ReferenceMock(clock=clock), clock, network=network)
    network.fault = lambda request: "refused"
    with pytest.raises(TargetUnreachable, match="cannot reach"):
        read_ip(target, mock_target_fixtures)
    assert target.sent == 4


def test_a_state_change_whose_answer_was_lost_is_settled_before_it_is_sent_again(
        faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """A POST lost after the server acted is sent again only when `settle` says nothing it names moved; else AnswerLost."""
    f = mock_target_fixtures
    asked: list[str] = []

    def moved(request: httpx.Request) -> bool:
        asked.append(request.url.path)
        return False

    faulty.settle = moved
    network.fault = times(1, "after")
    with pytest.raises(AnswerLost, match=r"^not judged \(network\): the answer to POST"):
        api.allocate(faulty, f.credential("valid"), f.network_interface_id, {"id": f.allocatable[0].id})
    assert asked == [BASE_PATH + ALLOCATE_PATH] and faulty.health.lost_unjudged == 1
    # Dropped before sending, nothing can have happened: sent again without asking.
    network.fault = times(1, "refused")
    assert api.unallocate(faulty, f.credential("valid"), f.allocatable[0]).status_code == 200
    assert len(asked) == 1


def test_a_state_change_that_moved_nothing_is_sent_again_and_judged(
        faulty: Target, network: Network, mock_target_fixtures: TargetFixtures) -> None:
    """`settle` finds nothing moved (the request was dropped before the server): the same request again, its answer judged."""
    f = mock_target_fixtures
    faulty.settle = lambda request: True
    network.fault = times(1, "before")
    response = api.allocate(faulty, f.credential("valid"), f.network_interface_id, {"id": f.allocatable[0].id})
    assert response.status_code == 200 and faulty.sent == 2


def test_the_injector_drops_a_seeded_share(clock: VirtualClock, mock_target_fixtures: TargetFixtures) -> None:
    """1% before and 1% after: a few of 300 requests are retried, all answered; the same seed drops the same requests."""
    def run(seed: int) -> tuple[int, int]:
        target = mock_target(ReferenceMock(clock=clock), clock, faults=Faults(0.01, 0.01, seed=seed))
        for _ in range(300):
            assert read_ip(target, mock_target_fixtures).status_code == 200
        return target.health.retried, target.sent

    first = run(3)
    assert first == run(3) and first[0] > 0 and first[1] == 300 + first[0]


def test_request_retries_is_an_option_with_an_environment_variable() -> None:
    """--request-retries / KATAPULT_REQUEST_RETRIES, default 3; below 0 is a usage error naming the option."""
    from conformance.setup.settings import ConfigError, build_config

    assert build_config({}, {}).request_retries == 3
    assert build_config({}, {"KATAPULT_REQUEST_RETRIES": "0"}).request_retries == 0
    assert build_config({"request_retries": "5"}, {"KATAPULT_REQUEST_RETRIES": "0"}).request_retries == 5
    with pytest.raises(ConfigError, match="--request-retries"):
        build_config({"request_retries": "-1"}, {})


def test_over_a_socket_a_connection_closed_on_one_request_is_that_requests_finding(
        serve_mock: Callable[..., ServedMock], mock_target_fixtures: TargetFixtures) -> None:
    """Served, the mock's worker dies on a long id (the socket closes without a byte): sent 4 times, then ConnectionDropped; the
    target still answers the next request."""
    served = serve_mock("--mutant", "drops-connection-on-long-id")
    target = live_target(served.base_url, timeout=5.0, max_requests=50, max_rate=1000.0, retries=3)
    # The socket is the point, not the backoff's length (held above): 10, 20, 40 ms between the sends, not 0.5, 1, 2 s.
    target.retry = RetryPolicy(3, base=0.01)
    f = mock_target_fixtures
    try:
        assert read_ip(target, f).status_code == 200
        with pytest.raises(ConnectionDropped, match="closed the connection, 4 times"):
            api.allocate(target, f.credential("valid"), f.network_interface_id, {"id": "ip_" + "x" * 300})
        assert read_ip(target, f).status_code == 200
    finally:
        target.close()


def test_the_network_line_says_what_happened() -> None:
    """One line for the report: retries and why, and whether any request failed twice or never got an answer."""
    from conformance.wire.retry import NetworkHealth

    health = NetworkHealth()
    for _ in range(290):
        health.answered(())
    assert health.describe() == "none of 290 requests needed a retry"
    for _ in range(5):
        health.answered((Lost.ANSWER_LOST,))
    health.answered((Lost.GATEWAY,))
    assert health.describe() == "6 of 296 requests retried after a dropped connection or a gateway's error page; none failed twice"
    health.answered((Lost.BEFORE_SENDING, Lost.BEFORE_SENDING))
    health.given_up((Lost.ANSWER_LOST,), unjudged=True)
    health.given_up((Lost.ANSWER_LOST,) * 4, unjudged=False)
    assert health.describe() == ("7 of 299 requests retried after a dropped connection or a gateway's error page; 2 failed twice or more;"
                                 " 1 answer(s) lost after the server may have acted, left unjudged; 1 got no answer on any attempt")
    copy = NetworkHealth()
    copy.add(health.as_dict())
    assert copy.describe() == health.describe()


def test_the_served_mock_answers_as_a_real_front_end_may(serve_mock: Callable[..., ServedMock]) -> None:
    """--connection-close, --gzip (when accepted), --chunked and --charset: correct HTTP, each as asked."""
    served = serve_mock("--connection-close", "--gzip", "--chunked", "--charset")
    with httpx.Client(timeout=5.0) as client:
        response = client.post(served.base_url + ALLOCATE_PATH, json={}, headers={"Accept-Encoding": "gzip"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "missing_api_token")
    assert response.headers["connection"] == "close" and response.headers["content-encoding"] == "gzip"
    assert response.headers["transfer-encoding"] == "chunked" and "content-length" not in response.headers
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_the_served_mock_drops_what_it_is_told_to(serve_mock: Callable[..., ServedMock]) -> None:
    """--drop-before 1 closes every API connection without an answer, --gateway-errors 1 answers a gateway's page; the control
    paths are never dropped."""
    dropping = serve_mock("--drop-before", "1")
    gateway = serve_mock("--gateway-errors", "1")
    with httpx.Client(timeout=5.0) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(dropping.base_url + ALLOCATE_PATH, json={})
        assert client.post(dropping.base_url.removesuffix(BASE_PATH) + "/__mock__/reset").status_code == 204
        page = client.post(gateway.base_url + ALLOCATE_PATH, json={})
    assert page.status_code == 502 and "X-Request-Id" not in page.headers and page.headers["content-type"] == "text/html"


def test_faults_are_spelt_as_the_options_and_checked() -> None:
    """KATAPULT_MOCK_FAULTS's spelling; a share outside 0..1 or an unknown key is refused, naming it."""
    assert Faults.parse("drop-before=0.01, drop-after=0.02,seed=3") == Faults(0.01, 0.02, 0.0, 3)
    with pytest.raises(ValueError, match="--drop-after must be a share between 0 and 1"):
        Faults.parse("drop-after=2")
    with pytest.raises(ValueError, match="unknown fault 'drop'"):
        Faults.parse("drop=0.1")
