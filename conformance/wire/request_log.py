"""An audit log of every request the suite sends: one redacted line each, the run's nonce normalised."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import TextIO

import httpx

from conformance.setup.redaction import REDACT
from conformance.wire.exchange import escaped
from conformance.wire.retry import RETRIED, Attempt, Retried

RUN_PLACEHOLDER = "<run>"


class RequestLog:
    """Appends `TIME METHOD path?query body -> status X-Request-Id` per response the tests get (the preflight's are counted in the
    report, not logged), to match a failure against the server's logs; bytes that are not printable UTF-8 are escaped. A request
    sent again after a lost attempt is marked (`[retried after 1 dropped connection]`); one that got no answer is logged too."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.run_id = run_id
        self.file: TextIO = path.open("w", encoding="utf-8")

    def observe(self, response: httpx.Response) -> None:
        """Write one line for this exchange."""
        request = response.request
        target = request.url.raw_path.decode("ascii", "replace")
        body = escaped(request.content)
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        request_id = response.headers.get("X-Request-Id") or "-"
        retried = response.extensions.get(RETRIED)
        mark = f" [{retried.describe()}]" if isinstance(retried, Retried) else ""
        self.write(f"{stamp} {request.method} {target} {body} -> {response.status_code} {request_id}{mark}")

    def attempt(self, attempt: Attempt) -> None:
        """Attempt observer: a line for a request that got no answer in the end (lost on every attempt, not sent again, or no
        answer in time); answered requests are written by `observe`, marked when they were retried."""
        if not attempt.final or attempt.response is not None or attempt.probe:
            return
        request = attempt.request
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        why = f"{attempt.lost.words}, attempt {attempt.number}" if attempt.lost is not None else "no answer in time"
        self.write(f"{stamp} {request.method} {request.url.raw_path.decode('ascii', 'replace')} {escaped(request.content)}"
                   f" -> no answer ({why}: {attempt.reason})")

    def write(self, line: str) -> None:
        """One line, redacted, the run's nonce normalised."""
        self.file.write(REDACT(line.replace(self.run_id, RUN_PLACEHOLDER)) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        self.file.close()
