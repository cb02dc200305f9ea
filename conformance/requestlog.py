"""An audit log of every request the suite sends: one redacted line each, the run's nonce normalised."""
from __future__ import annotations

from pathlib import Path
from typing import TextIO

import httpx

from conformance.redact import REDACT

RUN_PLACEHOLDER = "<run>"


class RequestLog:
    """Appends `METHOD path?query body -> status` per response; two ci runs on one target give the same file."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.run_id = run_id
        self.file: TextIO = path.open("w", encoding="utf-8")

    def observe(self, response: httpx.Response) -> None:
        """Write one line for this exchange."""
        request = response.request
        target = request.url.raw_path.decode("ascii", "replace")
        body = request.content.decode("utf-8", "replace")
        line = f"{request.method} {target} {body} -> {response.status_code}"
        self.file.write(REDACT(line.replace(self.run_id, RUN_PLACEHOLDER)) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        self.file.close()
