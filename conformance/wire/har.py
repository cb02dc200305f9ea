"""The run's record as HAR 1.2: every request sent and every answer, credentials redacted, one file for every process of a run.

The file is valid JSON at every moment: each entry is written in one write that overwrites the closing `]}}` and ends
with it again, so a run stopped by Ctrl-C, SIGTERM or a crash leaves every entry written so far readable. Processes of
one run (pytest-xdist workers, the controller) append to the same file under an exclusive lock.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from conformance.setup.redaction import PLACEHOLDER, REDACT

if sys.platform != "win32":
    import fcntl

HAR_VERSION = "1.2"
CREATOR = "katapult-conformance"
# Custom fields (HAR allows any name starting with "_"): which test an exchange served, for which promises, in which phase.
TEST, PROMISES, PHASE, WORKER, ERROR = "_test", "_promises", "_phase", "_worker", "_error"
# HAR has no encoding for request bodies: bytes that are not UTF-8 are kept here as base64 (`text` shows them decoded with
# replacement characters, for viewers); `replay` reads them back from this field.
REQUEST_BYTES = "_base64"
# Phases of a run, in the order they come.
PREFLIGHT, SESSION_START, SETUP, CALL, TEARDOWN, END_OF_RUN, BURST = (
    "preflight", "session start", "setup", "call", "teardown", "end-of-run check", "429 burst")
HEAD = '{"log": {"version": "%s", "creator": {"name": "%s", "version": "%s"}, "pages": [], "entries": ['
TAIL = b"\n]}}\n"


def package_version() -> str:
    """This package's version, for the HAR's creator (unknown when run from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("katapult-conformance")
    except PackageNotFoundError:
        return "unknown"


def redacted_bytes(data: bytes) -> bytes:
    """The bytes with every known secret (as UTF-8) replaced by the placeholder: base64 would hide a secret from text redaction."""
    for secret in sorted(REDACT.secrets, key=len, reverse=True):
        data = data.replace(secret.encode("utf-8"), PLACEHOLDER.encode("ascii"))
    return data


def as_text(data: bytes) -> str | None:
    """The bytes as text when they are UTF-8, else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def stamp(moment: datetime.datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as browsers write startedDateTime."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pairs(items: Any) -> list[dict[str, str]]:
    """Name/value pairs as HAR lists them."""
    return [{"name": str(name), "value": str(value)} for name, value in items]


def request_part(request: httpx.Request, http_version: str) -> dict[str, Any]:
    """HAR's request object: method, URL, headers, query and body (bytes that are not UTF-8 in REQUEST_BYTES)."""
    body = redacted_bytes(request.content)
    part: dict[str, Any] = {
        "method": request.method, "url": str(request.url), "httpVersion": http_version, "cookies": [],
        "headers": pairs(request.headers.multi_items()), "queryString": pairs(request.url.params.multi_items()),
        "headersSize": -1, "bodySize": len(request.content),
    }
    if request.content:
        text = as_text(body)
        post: dict[str, Any] = {"mimeType": request.headers.get("Content-Type", ""), "params": [],
                                "text": text if text is not None else body.decode("utf-8", "replace")}
        if text is None:
            post[REQUEST_BYTES] = base64.b64encode(body).decode("ascii")
        part["postData"] = post
    return part


def response_part(response: httpx.Response) -> dict[str, Any]:
    """HAR's response object: status, headers and body (base64 when it is not UTF-8)."""
    body = redacted_bytes(response.content)
    text = as_text(body)
    content: dict[str, Any] = {"size": len(response.content), "mimeType": response.headers.get("Content-Type", "")}
    if text is not None:
        content["text"] = text
    else:
        content.update(text=base64.b64encode(body).decode("ascii"), encoding="base64")
    return {
        "status": response.status_code, "statusText": response.reason_phrase, "httpVersion": response.http_version, "cookies": [],
        "headers": pairs(response.headers.multi_items()), "content": content, "redirectURL": response.headers.get("Location", ""),
        "headersSize": -1, "bodySize": len(response.content),
    }


def unanswered_part(reason: str) -> dict[str, Any]:
    """The response object of a request that got no answer: status 0, as browsers export an aborted request."""
    return {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [], "content": {"size": 0, "mimeType": ""},
            "redirectURL": "", "headersSize": -1, "bodySize": -1, "comment": reason}


def entry(request: httpx.Request, response: dict[str, Any], seconds: float, ended: datetime.datetime, marks: Mapping[str, Any]) -> dict[str, Any]:
    """One HAR entry (bodies redacted here, the rest when it is written)."""
    milliseconds = round(seconds * 1000, 3)
    found = {
        "startedDateTime": stamp(ended - datetime.timedelta(seconds=seconds)), "time": milliseconds,
        "request": request_part(request, response["httpVersion"] or "HTTP/1.1"), "response": response, "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": milliseconds, "receive": 0},
        **marks,
    }
    return found


def redacted_json(found: dict[str, Any]) -> bytes:
    """The entry as one line of JSON, every secret replaced: in the text once (scrubbing each string costs more than the exchange),
    and in its JSON-escaped form where escaping changes it."""
    text = REDACT(json.dumps(found, ensure_ascii=False))
    for secret in REDACT.secrets:
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, PLACEHOLDER)
    return text.encode("utf-8")


class HarRecorder:
    """Appends an entry per exchange to one HAR file shared by every process of a run; `marks` say what the exchanges serve."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        """Open the file; `fresh` starts it anew (the run's first process), else entries are added to what is there."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.marks: dict[str, Any] = {}
        with self.locked():
            if fresh or os.fstat(self.fd).st_size < len(TAIL):
                os.ftruncate(self.fd, 0)
                self.write_at(0, (HEAD % (HAR_VERSION, CREATOR, package_version())).encode("utf-8") + TAIL)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's exclusive lock (other processes of the run write to it too)."""
        if sys.platform == "win32":
            # No flock: a run on Windows writes from one process at a time in practice (xdist workers may interleave).
            yield
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def append(self, found: dict[str, Any]) -> None:
        """Write one entry in place of the closing bytes, followed by them: the file stays valid JSON at every moment."""
        data = redacted_json(found)
        with self.locked():
            end = os.fstat(self.fd).st_size - len(TAIL)
            os.lseek(self.fd, end - 1, os.SEEK_SET)
            first = os.read(self.fd, 1) == b"["
            self.write_at(end, (b"" if first else b",") + b"\n" + data + TAIL)

    def write_at(self, offset: int, data: bytes) -> None:
        """Write all the bytes at the offset (the lock held)."""
        os.lseek(self.fd, offset, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def observe(self, response: httpx.Response) -> None:
        """Record one exchange (a Target observer)."""
        seconds = response.elapsed.total_seconds() if hasattr(response, "_elapsed") else 0.0
        self.append(entry(response.request, response_part(response), seconds, datetime.datetime.now(datetime.UTC), self.marks))

    def observe_unanswered(self, request: httpx.Request, reason: str, seconds: float) -> None:
        """Record a request that got no answer (timeout, refused, reset): an entry without a status, marked with why."""
        marks = {**self.marks, ERROR: reason}
        self.append(entry(request, unanswered_part(reason), seconds, datetime.datetime.now(datetime.UTC), marks))

    @contextlib.contextmanager
    def marked(self, **marks: Any) -> Iterator[None]:
        """Mark the exchanges made inside the block (names without the leading underscore: test, promises, phase; None drops one)."""
        before = dict(self.marks)
        for name, value in marks.items():
            if value is None:
                self.marks.pop(f"_{name}", None)
            else:
                self.marks[f"_{name}"] = value
        try:
            yield
        finally:
            self.marks = before

    def close(self) -> None:
        """Release the file."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
