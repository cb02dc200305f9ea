"""The reference mock in this process: an httpx.MockTransport hands a Target's requests to it, with no socket.

No router library in between (respx was): every request goes to the one mock, so routing would only cost time per
request, an import, and a recorded call per request kept for the whole run.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from conformance.mock.app import MockRequest, ReferenceMock, VirtualClock
from conformance.mock.faults import CLOSED, Faults, FaultyHandler
from conformance.mock.world import DEFAULT_WORLD, load_world
from conformance.wire.exchange import SERVED_AS
from conformance.wire.paths import BASE_PATH
from conformance.wire.retry import DEFAULT_RETRIES, RetryPolicy
from conformance.wire.transport import Pacer, Target

MOCK_BASE_URL = f"http://katapult-mock.invalid{BASE_PATH}"
Handler = Callable[[httpx.Request], httpx.Response]
# The network in front of the embedded mock: none, unless a run sets it, for the project's tests: the injector's seeded faults
# (`-p conformance.tools.faulty_network`), or any wrapper of the handler (a test's scripted faults).
FAULTS: Faults | None = None
NETWORK: Callable[[Handler], Handler] | None = None


def _headers(request: httpx.Request) -> dict[str, str]:
    """The request's headers as one value per name, as a server reads them (repeated names joined with ", ").

    From the pairs, each decoded once: dict(request.headers) decodes every header again for each name it looks up.
    """
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _mock_handler(mock: ReferenceMock, served_as: tuple[str, ...]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        # What a reproduce line needs to serve this very mock: `katapult-conformance mock` with these options.
        request.extensions[SERVED_AS] = served_as
        answer = mock.handle(
            MockRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.url.params) if request.url.query else {},
                headers=_headers(request),
                body=request.content,
            )
        )
        if answer.hang:
            raise httpx.ReadTimeout("the mock never answers this request", request=request)
        if answer.drop:
            raise httpx.RemoteProtocolError(CLOSED, request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    return handle


def _answered_in_process(handler: Handler) -> Handler:
    """Each request the client built, answered by the handler as it is.

    The request is httpx's own (the client's build_request: default headers, URL, timeout), so the mock sees what a server
    would; what the client's send adds on the way to a network (auth and redirect flows, a cookie jar the mock never
    fills, the stream's timing wrapper) is left out: 40 of the 100 us each request cost in process.
    """
    def exchange(request: httpx.Request) -> httpx.Response:
        request.read()
        response = handler(request)
        response.request = request
        return response

    return exchange


def mock_target(mock: ReferenceMock, clock: VirtualClock, timeout: float = 10.0, world: Path | None = None, *, faults: Faults | None = None,
                network: Callable[[Handler], Handler] | None = None, retries: int = DEFAULT_RETRIES, seed: int = 0) -> Target:
    """The in-process mock: its handler answers the client's requests directly, with no socket (nor TLS, nor proxies: a client
    given a transport builds neither). `world` is the file its world came from, when not the shipped one. `faults` puts the
    injector's network in front of it, `network` any other wrapper of the handler (a test's own faults); retries back off on
    the virtual clock."""
    served_as = (("--mutant", mock.name) if mock.name != ReferenceMock.name else ()) + (("--world", str(world)) if world is not None else ())
    handler: Handler = _mock_handler(mock, served_as)
    if faults is not None and faults.any:
        handler = FaultyHandler(handler, faults)
    if network is not None:
        handler = network(handler)
    client = httpx.Client(transport=httpx.MockTransport(handler), timeout=timeout)
    pacer = Pacer(0.0, clock.advance, clock)
    return Target("mock", MOCK_BASE_URL, client, pacer, timeout=timeout, max_requests=None, mock=mock,
                  exchange=_answered_in_process(handler), retry=RetryPolicy(retries, seed))


def mock_class(name: str | None) -> type[ReferenceMock]:
    """The faithful mock for no name (or its own, `faithful`) without importing the mutant catalogue; else the catalogue's answer."""
    if name in (None, "", ReferenceMock.name):
        return ReferenceMock
    from conformance.mock.mutants import mock_class as from_catalogue

    return from_catalogue(name)


def embedded_target(mutant: str | None, world: Path | None, timeout: float, *, retries: int = DEFAULT_RETRIES, seed: int = 0) -> Target:
    """The suite's default target: the faithful mock (or the named mutants) on a world file, in this process, on a virtual clock."""
    clock = VirtualClock()
    mock = mock_class(mutant)(load_world(world or DEFAULT_WORLD), clock=clock)
    return mock_target(mock, clock, timeout=timeout, world=world, faults=FAULTS, network=NETWORK, retries=retries, seed=seed)
