"""What the katapult_mock fixture hands a test: a respx router that answers Katapult requests with the reference mock in process.

The router intercepts every httpx.Client and httpx.AsyncClient of the process (respx patches httpx), whoever made them. The
operations the mock serves, at the base URL the test names, go to one ReferenceMock (or a mutant of it) on the world the test
gives; anything else fails the request (respx's assert_all_mocked) and the test. Imported only when a test asks for the fixture.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import respx
from respx.models import AllMockedAssertionError, CallList, RouteList
from respx.router import Router

from conformance.mock.app import ALLOCATE_ROUTE, READ_INTERFACE_ROUTE, READ_IP_ROUTE, UNALLOCATE_ROUTE, MockRequest, ReferenceMock
from conformance.mock.inprocess import mock_class
from conformance.mock.world import DEFAULT_WORLD, World, WorldError, load_world
from conformance.wire.paths import BASE_PATH

PRODUCTION_BASE_URL = "https://api.katapult.io/core/v1"
# The operations the reference mock serves (its own route patterns, under BASE_PATH), by the route names tests look them up by.
OPERATIONS = (
    ("allocate_ip", "POST", ALLOCATE_ROUTE),
    ("read_interface", "GET", READ_INTERFACE_ROUTE),
    ("read_ip", "GET", READ_IP_ROUTE),
    ("unallocate", "POST", UNALLOCATE_ROUTE),
)
WORLD_FORMAT = "docs/mock.md, 'The world file'"
# What the mock reads of each interface when it answers (the loader reads only the id): missing, a 200 would fail mid-test.


class KatapultMockError(Exception):
    """An option katapult_mock cannot use; its message is one line naming the option and the fix."""


@dataclass(frozen=True)
class MockOptions:
    """Where the mock answers, on which world, as which mutant, and the states a client must survive."""

    base_url: str = PRODUCTION_BASE_URL
    world: Path | None = None
    mutant: str | None = None
    rate_limit_after: int | None = None
    maintenance: bool = False


OPTION_NAMES = tuple(option.name for option in fields(MockOptions))


def checked(options: MockOptions) -> MockOptions:
    """The options if the mock can use them, the base URL without a trailing slash; else a KatapultMockError naming the bad one."""
    try:
        url = httpx.URL(options.base_url) if isinstance(options.base_url, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise KatapultMockError(f"katapult_mock: base_url {options.base_url!r} is not an http(s) URL with a host and no query; "
                                f"give the API base, e.g. {PRODUCTION_BASE_URL!r}")
    if options.mutant is not None and not isinstance(options.mutant, str):
        raise KatapultMockError(f"katapult_mock: mutant {options.mutant!r} is not a name; give one of the mock's mutants (docs/mutants.md) or None")
    limit = options.rate_limit_after
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise KatapultMockError(f"katapult_mock: rate_limit_after {limit!r} is not a number of requests; "
                                "give an integer >= 0, or None for the world's limit")
    if not isinstance(options.maintenance, bool):
        raise KatapultMockError(f"katapult_mock: maintenance {options.maintenance!r} is not True or False")
    world = Path(options.world) if isinstance(options.world, (str, Path)) else options.world
    if world is not None and not isinstance(world, Path):
        raise KatapultMockError(f"katapult_mock: world {options.world!r} is not a path; give a world file ({WORLD_FORMAT}) or None for the default")
    return replace(options, base_url=str(url).rstrip("/"), world=world)


def loaded_world(options: MockOptions) -> World:
    """The world the options name (the mock's own when none), with the rate limit they set."""
    path = options.world or DEFAULT_WORLD
    try:
        # Every key the mock answers with is checked there, named by its path in the file (`network_interfaces[0].mac_address`).
        world = load_world(path)
    except WorldError as error:
        raise KatapultMockError(f"katapult_mock: {error}; fix it (the format: {WORLD_FORMAT}) or leave world unset for the default") from None
    if options.rate_limit_after is not None:
        world.permitted = options.rate_limit_after
    return world


def server_headers(request: httpx.Request) -> dict[str, str]:
    """The request's headers as a server reads them: one value per name, repeated names joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def answers(router: Router, request: httpx.Request) -> bool:
    """Whether another respx router (a test's respx_mock, say) will answer a request this one has no route for."""
    # respx keeps this setting private; a router without it answers everything with an empty 200.
    if not getattr(router, "_assert_all_mocked", True):
        return True
    return any(route.pattern is None or bool(route.pattern.match(request)) for route in router.routes)


class _Router(respx.MockRouter):
    """A respx router that keeps the requests no router answered, and says in its error what it does route."""

    def __init__(self, owner: KatapultMock) -> None:
        super().__init__(assert_all_called=False, assert_all_mocked=True)
        self.owner = owner

    def handler(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handler(request)
        except AllMockedAssertionError:
            raise self.refused(request) from None

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().async_handler(request)
        except AllMockedAssertionError:
            raise self.refused(request) from None

    def refused(self, request: httpx.Request) -> AllMockedAssertionError:
        """respx's error for a request no route of this router matched (so another router may still answer it), kept if none will."""
        others = [router for router in (self.Mocker.routers if self.Mocker else ()) if router is not self]
        if not any(answers(router, request) for router in others):
            self.owner.unrouted.append(request)
        return AllMockedAssertionError(f"katapult_mock: {request.method} {request.url} is not routed; {self.owner.serves()}")


class KatapultMock:
    """The fixture's object: options (configure), respx's router, routes and call records, the reference mock it answers with."""

    def __init__(self, **options: Any) -> None:
        self.options = MockOptions()
        self.unrouted: list[httpx.Request] = []
        self.router = _Router(self)
        self.prefix = ""
        self._mock: ReferenceMock | None = None
        self.configure(**options)

    @property
    def mock(self) -> ReferenceMock:
        """The reference mock (or mutant) answering: its `world` says who holds which IP now."""
        assert self._mock is not None, "configure() builds the mock"
        return self._mock

    # --- configuration -------------------------------------------------------------------------------------
    def configure(self, **options: Any) -> KatapultMock:
        """Change options (base_url, world, mutant, rate_limit_after, maintenance); any but maintenance starts the mock afresh."""
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise KatapultMockError(f"katapult_mock: unknown option {unknown[0]!r}; the options are {', '.join(OPTION_NAMES)}")
        new = checked(replace(self.options, **options))
        if self._mock is None or any(name != "maintenance" for name in options):
            try:
                cls = mock_class(new.mutant)
            except ValueError as error:
                raise KatapultMockError(f"katapult_mock: {error}") from None
            self._mock = cls(loaded_world(new))
            self.route(new.base_url)
        self.options = new
        self.mock.maintenance = new.maintenance
        return self

    def route(self, base_url: str) -> None:
        """Route each operation the mock serves, at `base_url`, to it (replacing the routes of an earlier base URL)."""
        url = httpx.URL(base_url)
        self.prefix = url.path.rstrip("/")
        for name, method, pattern in OPERATIONS:
            self.router.pop(name, None)
            # The mock's own pattern, anchored under the test's base path instead of BASE_PATH.
            path = re.compile("^" + re.escape(self.prefix) + pattern.pattern.removeprefix("^"))
            self.router.route(method=method, scheme=url.scheme, host=url.host, port=url.port or (443 if url.scheme == "https" else 80),
                              path__regex=path, name=name).mock(side_effect=self.answer)

    def serves(self) -> str:
        """What the router answers, for its error messages."""
        return (f"katapult_mock answers allocate_ip and its support operations at {self.options.base_url} "
                "(route anything else on katapult_mock.router, respx's MockRouter)")

    # --- answering -----------------------------------------------------------------------------------------
    def answer(self, request: httpx.Request, **_: object) -> httpx.Response:
        """The mock's answer to a routed request, its path moved from the test's base path to the mock's."""
        path = BASE_PATH + request.url.path[len(self.prefix):]
        answer = self.mock.handle(MockRequest(method=request.method, path=path, query=dict(request.url.params) if request.url.query else {},
                                              headers=server_headers(request), body=request.content))
        if answer.hang:
            raise httpx.ReadTimeout("the mock never answers this request", request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    # --- what the test reads -------------------------------------------------------------------------------
    @property
    def calls(self) -> CallList:
        """respx's record of every routed request and its response (`.calls.last.request`, `.call_count`)."""
        return self.router.calls

    @property
    def routes(self) -> RouteList:
        """The routes by name (allocate_ip, read_interface, read_ip, unallocate), each with its own `.calls`."""
        return self.router.routes

    def unanswered(self) -> list[httpx.Request]:
        """The requests no route answered (each raised in the client that sent it)."""
        return list(self.unrouted)

    def unrouted_message(self, requests: list[httpx.Request]) -> str:
        """One line for the requests no route answered that the test went on after."""
        sent = ", ".join(f"{request.method} {request.url}" for request in requests)
        return (f"katapult_mock: {len(requests)} request{'s' if len(requests) != 1 else ''} reached no route and the test went on "
                f"(its code caught the error): {sent}; {self.serves()}")

    # --- lifetime ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Intercept httpx from now on."""
        self.router.start()

    def stop(self) -> None:
        """Stop intercepting; the calls, the unrouted requests and the mock's state are forgotten."""
        self.router.stop(quiet=True)  # puts back the routes as they were at start: route the options' base URL again
        self.route(self.options.base_url)
        self.unrouted.clear()
        self.mock.reset()
        self.mock.maintenance = self.options.maintenance

    def __enter__(self) -> KatapultMock:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.stop()
