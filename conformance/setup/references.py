"""How printed commands name credentials: by the environment variable each came from, never by value.

A reproduce line must send what the test sent: a fixture credential as the `${VAR}` the target fixtures read it from (or, for
a value written inline in the file, a placeholder named after its key), the suite's own made-up token as it is.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from conformance.setup.fixtures import Credential, Reference, TargetFixtures

# The suite's own made-up token starts so (conformance.cases.identities): no target has it, so it is printed as it was sent.
MADE_UP_TOKEN_PREFIX = "kc-conformance-nonexistent-"


# Stands for credentials.valid where no fixtures were read: named by its placeholder, never sent by this process.
UNNAMED_VALID = Credential.bearer("valid", "")


class CredentialNames:
    """The session's secret values, each with the variable printed commands name it by, and the valid credential's headers."""

    def __init__(self) -> None:
        self.by_value: dict[str, Reference] = {}
        self.pattern: re.Pattern[str] | None = None
        # credentials.valid, which a put-back command presents (a token nobody named: a recording judged by replay), and the file.
        self.valid = UNNAMED_VALID
        self.source: Path | None = None

    def use(self, fixtures: TargetFixtures) -> Callable[[], None]:
        """Name these fixtures' secrets from now on; returns what puts the names back as they were (a session's end)."""
        before = (dict(self.by_value), self.valid, self.source)
        named = {secret: reference for credential in fixtures.credentials.values()
                 for secret, reference in credential.secret_references().items()}
        self._set(self.by_value | named, fixtures.credentials.get("valid", self.valid), fixtures.source)

        def restore() -> None:
            self._set(*before)

        return restore

    def _set(self, by_value: dict[str, Reference], valid: Credential, source: Path | None) -> None:
        self.by_value, self.valid, self.source = by_value, valid, source
        # Too-short values would be found inside innocent text, as for redaction; longest first, so no value hides a longer one.
        ordered = sorted((value for value in by_value if len(value) >= 4), key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(value) for value in ordered)) if ordered else None

    def parts(self, text: str) -> list[str | Reference]:
        """The text cut into literal pieces and the references its secrets become."""
        if self.pattern is None:
            return [text]
        pieces: list[str | Reference] = []
        start = 0
        for match in self.pattern.finditer(text):
            pieces += [text[start:match.start()], self.by_value[match.group(0)]]
            start = match.end()
        pieces.append(text[start:])
        return [piece for piece in pieces if piece != ""]

    def valid_headers(self) -> list[tuple[str, str]]:
        """credentials.valid's headers as a printed command sends them (`Bearer ${KATAPULT_API_TOKEN}`)."""
        return self.valid.shell_headers()

    def valid_references(self) -> list[Reference]:
        """How printed commands name credentials.valid's secrets."""
        return [self.valid.reference(header) for header in self.valid.headers]

    def note(self, reference: Reference) -> str:
        """Where to find the value of a placeholder (a value written inline), for whoever runs the command."""
        where = f" in {self.source}" if self.source is not None else ""
        return f"# set {reference.variable} to {reference.key}{where} (written there inline)"


NAMES = CredentialNames()
