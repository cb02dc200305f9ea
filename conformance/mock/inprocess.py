"""The reference mock in this process: respx routes a Target's requests to it, with no socket."""
from __future__ import annotations

from collections.abc import Callable

import httpx
import respx

from conformance.mock.app import MockRequest, ReferenceMock, VirtualClock
from conformance.wire.paths import BASE_PATH
from conformance.wire.transport import Pacer, Target

MOCK_BASE_URL = f"http://katapult-mock.invalid{BASE_PATH}"


def _mock_handler(mock: ReferenceMock) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        answer = mock.handle(
            MockRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.url.params),
                headers=dict(request.headers),
                body=request.content,
            )
        )
        if answer.hang:
            raise httpx.ReadTimeout("the mock never answers this request", request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    return handle


def mock_target(mock: ReferenceMock, clock: VirtualClock, timeout: float = 10.0) -> Target:
    """The in-process mock: respx routes the client's requests to it, with no socket."""
    router = respx.Router(base_url=MOCK_BASE_URL, assert_all_called=False)
    router.route().mock(side_effect=_mock_handler(mock))
    client = httpx.Client(transport=httpx.MockTransport(router.handler), timeout=timeout)
    pacer = Pacer(0.0, clock.advance, clock)
    return Target("mock", MOCK_BASE_URL, client, pacer, timeout=timeout, max_requests=None, mock=mock)
