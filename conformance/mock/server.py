"""Serve the reference mock (or a mutant) over real HTTP on loopback, like a Prism mock."""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from conformance.mock.app import MockRequest, MockResponse, ReferenceMock
from conformance.mock.faults import GATEWAY_CONTENT_TYPE, GATEWAY_PAGE, Fault, Faults, FrontEnd, Injector
from conformance.wire.paths import BASE_PATH

HANG_SECONDS = 3600.0
RECEIVED_PATH = "/__mock__/received"
# The most requests the received list keeps (its count goes on): a mock served for days must not grow without bound.
RECEIVED_KEPT = 100_000


class Received:
    """Every API request the served mock received, for tests that match a run's own account against the server's."""

    def __init__(self) -> None:
        self.count = 0
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def add(self, method: str, target: str, body: bytes, request_id: str) -> None:
        """One request: method, path and query as sent, a hash of its body, and the X-Request-Id it was answered with."""
        with self.lock:
            self.count += 1
            if len(self.requests) < RECEIVED_KEPT:
                self.requests.append({"method": method, "target": target, "body_sha256": hashlib.sha256(body).hexdigest(),
                                      "request_id": request_id})

    def answer(self) -> MockResponse:
        """GET /__mock__/received: the count and the requests, as JSON."""
        with self.lock:
            body = json.dumps({"count": self.count, "requests": self.requests}).encode()
        return MockResponse(200, body, {"Content-Type": "application/json"})


CONTROL_PATHS = {"/__mock__/reset": "reset", "/__mock__/maintenance/on": "on", "/__mock__/maintenance/off": "off"}


def control(mock: ReferenceMock, request: MockRequest) -> MockResponse | None:
    """The test double's own switches, outside the API's base path: POST /__mock__/reset, /__mock__/maintenance/{on,off}
    (GET /__mock__/received, the requests it received, is answered by the handler)."""
    action = CONTROL_PATHS.get(request.path) if request.method == "POST" else None
    if action is None:
        return None
    if action == "reset":
        mock.reset()
    else:
        mock.maintenance = action == "on"
    return MockResponse(204, b"")


def make_handler(mock: ReferenceMock, latency: tuple[float, float] = (0.0, 0.0), received: Received | None = None,
                 faults: Faults | None = None, front: FrontEnd | None = None) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one mock; each answer waits `latency` (min, max seconds), like a real network; every API
    request that reaches the mock is counted in `received` (GET /__mock__/received tells them); `faults` drops requests and
    answers of the API (never the control paths); `front` answers the way a real front end may."""
    jitter = random.Random(0)
    counted = received if received is not None else Received()
    injector = Injector(faults) if faults is not None and faults.any else None
    shape = front or FrontEnd()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms to every response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet: the mock is a test double, not a server to monitor."""

        def answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = MockRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={key: value for key, value in self.headers.items()},
                body=body,
                client_address=self.client_address[0],
            )
            asks_received = request.method == "GET" and request.path == RECEIVED_PATH
            switched = counted.answer() if asks_received else control(mock, request)
            fault = injector.before() if injector is not None and switched is None else None
            if fault is Fault.DROP_BEFORE:
                # Lost on the way: the server never sees it, the client sees the connection close without an answer.
                self.close_connection = True
                return
            if fault is Fault.GATEWAY:
                self.send_body(502, {"Content-Type": GATEWAY_CONTENT_TYPE}, GATEWAY_PAGE)
                return
            response = switched
            if response is None:
                response = mock.handle(request)
                counted.add(request.method, self.path, body, response.headers.get("X-Request-Id", ""))
            if latency[1] > 0:
                time.sleep(jitter.uniform(*latency))
            if response.hang:
                threading.Event().wait(HANG_SECONDS)
                return
            if response.drop or (injector is not None and switched is None and injector.after()):
                # The worker died, or the answer was lost after the server acted: the connection closes without a byte of it.
                self.close_connection = True
                return
            self.send_body(response.status, response.headers, response.body)

        def send_body(self, status: int, headers: dict[str, str], body: bytes) -> None:
            """Status, headers and body, shaped as the front end answers."""
            headers = dict(headers)
            if shape.charset and headers.get("Content-Type") == "application/json":
                headers["Content-Type"] = "application/json; charset=utf-8"
            if shape.gzip and body and "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if shape.connection_close:
                self.send_header("Connection", "close")
                self.close_connection = True
            if shape.chunked and body:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = max(1, len(body) // 2)
                for piece in (body[:half], body[half:]):
                    if piece:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    return Handler


class MockServer:
    """A running HTTP server for one mock on 127.0.0.1."""

    def __init__(self, mock: ReferenceMock, host: str = "127.0.0.1", port: int = 0, latency: tuple[float, float] = (0.0, 0.0),
                 faults: Faults | None = None, front: FrontEnd | None = None) -> None:
        self.mock = mock
        self.received = Received()
        self.httpd = ThreadingHTTPServer((host, port), make_handler(mock, latency, self.received, faults, front))
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API base the server answers under, e.g. http://127.0.0.1:8080/core/v1."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{BASE_PATH}"

    def start(self) -> MockServer:
        """Serve in a background thread."""
        # stop() waits for serve_forever's next poll: 0.5 s by default, which a test suite starting many servers pays each time.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
