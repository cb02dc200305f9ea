"""Secret redaction: every credential value is replaced by [redacted] in everything the suite writes."""
from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER = "[redacted]"


class Redactor:
    """Knows the session's secrets and scrubs them from text."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values (too-short values are ignored: they would scrub innocent text)."""
        self.secrets |= {secret for secret in secrets if len(secret) >= 4}
        ordered = sorted(self.secrets, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(secret) for secret in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        """The text with every secret replaced."""
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(PLACEHOLDER, text)


REDACT = Redactor()
