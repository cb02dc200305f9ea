"""The embedded reference mock of the endpoint, in-process (an httpx.MockTransport) or served over HTTP."""
from __future__ import annotations

from conformance.mock.app import MockRequest, MockResponse, ReferenceMock, VirtualClock
from conformance.wire.paths import BASE_PATH

__all__ = ["BASE_PATH", "MockRequest", "MockResponse", "ReferenceMock", "VirtualClock"]
