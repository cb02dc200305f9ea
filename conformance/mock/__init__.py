"""The embedded reference mock of the endpoint, in-process (respx) or served over HTTP."""
from __future__ import annotations

from conformance.mock.app import BASE_PATH, MockRequest, MockResponse, ReferenceMock, VirtualClock

__all__ = ["BASE_PATH", "MockRequest", "MockResponse", "ReferenceMock", "VirtualClock"]
