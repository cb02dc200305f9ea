"""Watches X-RateLimit-* on every response of the run: Remaining never above Permitted, never rising mid-window."""
from __future__ import annotations

import hashlib

import httpx

# A rise in Remaining is a new window only if it lands near the top; real tokens may be shared by other clients.
NEW_WINDOW_SHARE = 0.9


class RateLimitMonitor:
    """Remembers the last Remaining per token (by hash, never the token) and records inconsistencies."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.problems: list[str] = []
        self.seen = 0

    def observe(self, response: httpx.Response) -> None:
        """Judge one response's rate-limit headers against the previous one for the same token."""
        remaining_header = response.headers.get("X-RateLimit-Remaining")
        permitted_header = response.headers.get("X-RateLimit-Permitted")
        if remaining_header is None or permitted_header is None:
            return
        if not (remaining_header.isdigit() and permitted_header.isdigit()):
            self.problems.append(f"non-integer headers: Remaining {remaining_header!r}, Permitted {permitted_header!r}")
            return
        self.seen += 1
        remaining, permitted = int(remaining_header), int(permitted_header)
        token = hashlib.sha256(response.request.headers.get("Authorization", "").encode()).hexdigest()
        previous = self.last.get(token)
        self.last[token] = remaining
        if remaining > permitted:
            self.problems.append(f"Remaining {remaining} above Permitted {permitted}")
        elif previous is not None and remaining > previous and remaining < permitted * NEW_WINDOW_SHARE:
            self.problems.append(f"Remaining rose from {previous} to {remaining} without a new window (Permitted {permitted})")
