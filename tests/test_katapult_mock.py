"""The katapult_mock fixture, used as a client team uses it: their own code calling allocate_ip through httpx, in their own tests.

Each test writes a user's client module and test file and runs pytest on them in this process (pytester): the fixture comes
from its entry point, as after `pip install 'katapult-conformance[mock]'`.
"""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A client team's code: a function that allocates an IP through httpx and turns the API's answers into its own results.
CLIENT = '''
import httpx

BASE_URL = "https://api.katapult.io/core/v1"
ALLOCATE = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"


class KatapultError(Exception):
    def __init__(self, status, code):
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


def body(interface, ip):
    return {"virtual_machine_network_interface": {"id": interface}, "ip_address": {"id": ip}}


def answer(response):
    try:
        data = response.json()
    except ValueError:
        raise KatapultError(response.status_code, "malformed body") from None
    if response.status_code != 200:
        raise KatapultError(response.status_code, data["error"]["code"])
    return [ip["address"] for ip in data["virtual_machine_network_interface"]["ip_addresses"]]


def allocate_ip(client, token, interface, ip, base_url=BASE_URL):
    return answer(client.post(base_url + ALLOCATE, json=body(interface, ip), headers={"Authorization": f"Bearer {token}"}))


async def allocate_ip_async(client, token, interface, ip):
    return answer(await client.post(BASE_URL + ALLOCATE, json=body(interface, ip), headers={"Authorization": f"Bearer {token}"}))
'''

# The default world's valid token, an interface, a free IP on its network and one held by another interface (docs/mock.md).
NAMES = '''
TOKEN = "kmock-valid-7d1e0c5a9b"
ALPHA = "vmnet_mockAlpha000001"
FREE = "ip_mockFree000000001"
HELD = "ip_mockHeld000000001"
'''


def user_project(pytester: pytest.Pytester, tests: str) -> None:
    """The user's client module and a test module of theirs (imports and the world's names included)."""
    pytester.makepyfile(katapult_client=CLIENT)
    pytester.makepyfile(test_client="import asyncio\n\nimport httpx\nimport pytest\n\nfrom katapult_client import *\n" + NAMES + tests)


def test_a_client_meets_the_reference_behaviour_in_its_own_tests(pytester: pytest.Pytester) -> None:
    """200, 404, 422, a 429 after N requests, maintenance's 503 and a mutant's malformed body, each as the client sees it; calls recorded."""
    user_project(pytester, '''
def test_allocates(katapult_mock):
    with httpx.Client() as client:
        assert "185.199.221.10" in allocate_ip(client, TOKEN, ALPHA, FREE)
    assert katapult_mock.routes["allocate_ip"].call_count == 1
    assert katapult_mock.calls.last.response.status_code == 200
    assert katapult_mock.mock.world.ips[FREE].allocated_to == ALPHA


def test_unknown_ip_is_404(katapult_mock):
    with httpx.Client() as client, pytest.raises(KatapultError) as error:
        allocate_ip(client, TOKEN, ALPHA, "ip_doesNotExist00001")
    assert (error.value.status, error.value.code) == (404, "ip_address_not_found")


def test_an_ip_held_elsewhere_is_422(katapult_mock):
    with httpx.Client() as client, pytest.raises(KatapultError) as error:
        allocate_ip(client, TOKEN, ALPHA, HELD)
    assert (error.value.status, error.value.code) == (422, "ip_already_allocated")


@pytest.mark.katapult_mock(rate_limit_after=2)
def test_the_third_request_is_rate_limited(katapult_mock):
    with httpx.Client() as client:
        allocate_ip(client, TOKEN, ALPHA, FREE)
        allocate_ip(client, TOKEN, ALPHA, FREE)
        with pytest.raises(KatapultError) as error:
            allocate_ip(client, TOKEN, ALPHA, FREE)
    assert (error.value.status, error.value.code) == (429, "rate_limit_reached")
    last = katapult_mock.calls.last.response
    assert last.json()["error"]["detail"] == {"total_permitted": 2} and last.headers["X-RateLimit-Remaining"] == "0"


def test_maintenance_is_503(katapult_mock):
    katapult_mock.configure(maintenance=True)
    with httpx.Client() as client, pytest.raises(KatapultError) as error:
        allocate_ip(client, TOKEN, ALPHA, FREE)
    assert (error.value.status, error.value.code) == (503, "service_unavailable")


@pytest.mark.katapult_mock(mutant="200-invalid-json")
def test_a_malformed_200_is_an_error(katapult_mock):
    with httpx.Client() as client, pytest.raises(KatapultError) as error:
        allocate_ip(client, TOKEN, ALPHA, FREE)
    assert (error.value.status, error.value.code) == (200, "malformed body")


def test_an_async_client(katapult_mock):
    async def allocate():
        async with httpx.AsyncClient() as client:
            return await allocate_ip_async(client, TOKEN, ALPHA, FREE)

    assert "185.199.221.10" in asyncio.run(allocate())
    assert katapult_mock.routes["allocate_ip"].call_count == 1
''')
    # --strict-markers: the fixture's plugin registers its marker, so a project that refuses unknown markers can use it.
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--strict-markers").assert_outcomes(passed=7)


def test_each_test_starts_from_the_world_as_loaded(pytester: pytest.Pytester) -> None:
    """An allocation, a rate window or the maintenance switch of one test is gone in the next; so are its calls."""
    user_project(pytester, '''
@pytest.mark.parametrize("run", [1, 2])
@pytest.mark.katapult_mock(rate_limit_after=1)
def test_fresh(katapult_mock, run):
    assert katapult_mock.calls.call_count == 0 and katapult_mock.mock.world.ips[FREE].allocated_to is None
    with httpx.Client() as client:
        allocate_ip(client, TOKEN, ALPHA, FREE)
    katapult_mock.configure(maintenance=True)
''')
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q").assert_outcomes(passed=2)


def test_a_base_url_and_a_world_of_the_users_own(pytester: pytest.Pytester) -> None:
    """At a gateway's base URL, on a world file the user wrote, the routes answer there, and production's URL is not routed."""
    pytester.makefile(".yaml", world='''
rate_limit: {permitted: 200, window_seconds: 60}
tokens:
  - {token: team-token, scopes: [ip_addresses]}
networks:
  - {id: netw_team, name: Team Network}
network_interfaces:
  - {id: vmnet_team, name: eth0, virtual_machine: {id: vm_team, name: team-vm}, network: netw_team, mac_address: "02:00:00:00:00:01",
     state: attached}
ip_addresses:
  - {id: ip_team, address: 192.0.2.7, network: netw_team, allocated_to: null}
''')
    user_project(pytester, '''
GATEWAY = "http://gateway.test:8080/katapult/core/v1"


@pytest.mark.katapult_mock(base_url=GATEWAY + "/", world="world.yaml")
def test_gateway(katapult_mock):
    with httpx.Client() as client:
        assert allocate_ip(client, "team-token", "vmnet_team", "ip_team", base_url=GATEWAY) == ["192.0.2.7"]
        assert katapult_mock.calls.last.response.headers["X-RateLimit-Permitted"] == "200"
        with pytest.raises(AssertionError, match="is not routed"):
            allocate_ip(client, "team-token", "vmnet_team", "ip_team")
    katapult_mock.unrouted.clear()  # that one was the point of the test
''')
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q").assert_outcomes(passed=1)


def test_a_request_to_anything_else_fails_the_test(pytester: pytest.Pytester) -> None:
    """An unrouted request raises in the client, and a test whose code caught it fails at teardown; another respx router may answer it."""
    user_project(pytester, '''
def test_other_host(katapult_mock):
    httpx.get("https://example.test/health")


def test_caught(katapult_mock):
    try:
        httpx.get("https://api.katapult.io/core/v1/organizations/_")
    except Exception:
        pass


def test_routed_by_the_user(katapult_mock, respx_mock):
    respx_mock.get("https://example.test/health").respond(204)
    katapult_mock.router.get("https://status.test/").respond(200)
    assert httpx.get("https://example.test/health").status_code == 204
    assert httpx.get("https://status.test/").status_code == 200
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rfE")
    result.assert_outcomes(passed=2, failed=1, errors=1)  # test_caught passed its call and errs at teardown
    result.stdout.fnmatch_lines_random([
        "E   *AllMockedAssertionError: katapult_mock: GET https://example.test/health is not routed; "
        "katapult_mock answers allocate_ip and its support operations at https://api.katapult.io/core/v1*",
        "*katapult_mock: 1 request reached no route and the test went on (its code caught the error): "
        "GET https://api.katapult.io/core/v1/organizations/_;*",
    ])
    result.stdout.no_fnmatch_line("*test_other_host*teardown*")


def test_asking_for_the_fixture_never_activates_the_gate(pytester: pytest.Pytester) -> None:
    """The gate's plugin stays idle in a run whose tests use katapult_mock: no settings, no session header, no preflight."""
    user_project(pytester, '''
from conformance.gate.keys import CONFIG_KEY


def test_idle_gate(katapult_mock, request):
    with httpx.Client() as client:
        allocate_ip(client, TOKEN, ALPHA, FREE)
    assert CONFIG_KEY not in request.config.stash
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("katapult-conformance *")  # the gate's session header


def test_options_it_cannot_use_are_one_line_each(pytester: pytest.Pytester) -> None:
    """An unknown mutant, a world file that does not load or lacks what the mock answers with, an unknown option, a bad base URL:
    a setup error naming it and the fix."""
    pytester.makefile(".yaml", broken="tokens: []\n", no_mac='''
rate_limit: {permitted: 200, window_seconds: 60}
tokens: []
networks: []
network_interfaces:
  - {id: vmnet_team, name: eth0, virtual_machine: {id: vm_team, name: team-vm}, network: netw_team, state: attached}
ip_addresses: []
''')
    user_project(pytester, '''
@pytest.mark.katapult_mock(mutant="no-such-mutant")
def test_mutant(katapult_mock):
    pass


@pytest.mark.katapult_mock(world="broken.yaml")
def test_world(katapult_mock):
    pass


@pytest.mark.katapult_mock(world="no_mac.yaml")
def test_interface(katapult_mock):
    pass


@pytest.mark.katapult_mock(retries=3)
def test_option(katapult_mock):
    pass


@pytest.mark.katapult_mock(base_url="api.katapult.io/core/v1")
def test_base_url(katapult_mock):
    pass
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rE")
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines_random([
        "katapult_mock: unknown mutant 'no-such-mutant': choose one of 200-invalid-json, *",
        "katapult_mock: the mock world broken.yaml: rate_limit is missing (it must be a mapping {permitted, window_seconds}); fix it (the"
        " format: docs/mock.md, *",
        "katapult_mock: the mock world no_mac.yaml: network_interfaces[[]0].mac_address is missing (it must be a string); fix it *",
        "katapult_mock: unknown option 'retries'; the options are base_url, world, mutant, rate_limit_after, maintenance",
        "katapult_mock: base_url 'api.katapult.io/core/v1' is not an http(s) URL with a host and no query; *",
    ])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_without_respx_it_says_what_to_install(pytester: pytest.Pytester) -> None:
    """The fixture used where respx is not installed: one line naming the extra to install."""
    user_project(pytester, '''
import sys


@pytest.fixture
def no_respx(monkeypatch):
    monkeypatch.setitem(sys.modules, "respx", None)  # `import respx` now fails as where it is not installed
    monkeypatch.delitem(sys.modules, "conformance.tools.mock_router", raising=False)


def test_uses_it(no_respx, katapult_mock):
    pass
''')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rE")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["the katapult_mock fixture needs respx: pip install 'katapult-conformance[mock]'"])
