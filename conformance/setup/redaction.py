"""Secret redaction: every credential value is replaced by [redacted] in everything the suite writes."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

PLACEHOLDER = "[redacted]"
# Environment variables whose values are treated as secrets even when no fixtures file refers to them.
SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CAPABILITIES|CREDENTIAL", re.IGNORECASE)
# Shorter env values ("true", "1", "none") would scrub innocent text; real tokens are far longer.
MIN_ENV_SECRET = 8


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

    def snapshot(self) -> frozenset[str]:
        """The secrets known now, to restore when a session that adds its own ends."""
        return frozenset(self.secrets)

    def restore(self, secrets: frozenset[str]) -> None:
        """Forget every secret added since the snapshot."""
        self.secrets = set()
        self.add(secrets)

    def __call__(self, text: str) -> str:
        """The text with every secret replaced."""
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(PLACEHOLDER, text)

    def leaks(self, text: str) -> bool:
        """Whether the text still holds a secret."""
        return self.pattern is not None and self.pattern.search(text) is not None

    def scrub(self, value: Any) -> Any:
        """The value with secrets replaced in every string inside it; pytest's repr objects are scrubbed in place."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list | tuple):
            items = [self.scrub(item) for item in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if hasattr(value, "toterminal") and hasattr(value, "__dict__"):
            for name, item in vars(value).items():
                setattr(value, name, self.scrub(item))
        return value


def env_secrets(environ: Mapping[str, str]) -> set[str]:
    """Values of environment variables named like secrets (…TOKEN, …SECRET, …PASSWORD, …API_KEY)."""
    return {value for name, value in environ.items() if SECRET_ENV_NAME.search(name) and len(value) >= MIN_ENV_SECRET}


class RedactingStream:
    """A text stream that scrubs secrets from everything written through it."""

    def __init__(self, inner: TextIO, redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    def write(self, text: str) -> int:
        """Write the scrubbed text."""
        return self.inner.write(self.redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RedactingFormatter(logging.Formatter):
    """Formats with another formatter, then scrubs secrets (messages, arguments and tracebacks alike)."""

    def __init__(self, inner: logging.Formatter | None, redact: Redactor) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's text, scrubbed."""
        return self.redact(self.inner.format(record))


REDACT = Redactor()
