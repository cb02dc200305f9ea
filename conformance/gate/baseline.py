"""The baseline: accepted deviations, keyed on a finding's signature, each with a reason and an expiry date.

The file is a YAML list of entries (docs/baseline.md)::

    - promise: X-Request-Id on every response    # the promise the finding is charged to
      check: header X-Request-Id                  # the check that saw it
      status: 404                                 # the response status (null for findings without a response)
      code: ip_address_not_found                  # the error code (null when the body has none)
      message: "X-Request-Id: ''"                 # optional: a regular expression the finding's received text must match
      reason: staging sends empty ids until TICKET-123 ships
      expires: 2027-03-31

An entry excuses exactly the findings with that promise, check, status and code (and message, when given).
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.contract.findings import Finding
from conformance.contract.promises import BY_ID
from conformance.setup.redaction import REDACT
from conformance.setup.yamlfile import Key, YamlProblem, dotted, kind, load_yaml, wrong_type

REQUIRED_KEYS = ("promise", "check", "status", "code", "reason", "expires")
ENTRY_KEYS = (*REQUIRED_KEYS[:4], "message", *REQUIRED_KEYS[4:])
DEFAULT_LIFETIME = datetime.timedelta(days=90)
HEADER = (
    "# katapult-conformance baseline: accepted deviations, one entry per finding signature (docs/baseline.md).\n"
    "# An entry excuses exactly the findings with its promise, check, status and code (and message pattern, if given).\n"
)


class BaselineError(ValueError):
    """The baseline file cannot be used; the message is one sentence naming the entry and the problem."""


@dataclass(frozen=True)
class Entry:
    """One accepted deviation."""

    promise: str
    check: str
    status: int | None
    code: str | None
    reason: str
    expires: datetime.date
    message: str | None = None

    @property
    def label(self) -> str:
        """How messages name the entry."""
        return f"{self.promise} / {self.check} / {self.status} {self.code or '-'}"

    def expired(self, today: datetime.date) -> bool:
        """Whether the entry's date has passed (an entry is still valid on its expiry day)."""
        return self.expires < today

    def matches(self, finding: Finding) -> bool:
        """Whether this entry excuses the finding: same promise, check, status, code, and the message pattern if any."""
        signature = finding.signature
        if (signature.promise, signature.check, signature.status, signature.code) != (self.promise, self.check, self.status, self.code):
            return False
        return self.message is None or re.search(self.message, finding.received) is not None

    def as_yaml(self) -> dict[str, Any]:
        """The entry as the file spells it."""
        entry: dict[str, Any] = {"promise": self.promise, "check": self.check, "status": self.status, "code": self.code}
        if self.message is not None:
            entry["message"] = self.message
        return entry | {"reason": self.reason, "expires": self.expires}

    @classmethod
    def for_finding(cls, finding: Finding, today: datetime.date) -> Entry:
        """An entry that excuses exactly this finding, to be reviewed and given a real reason."""
        signature = finding.signature
        return cls(signature.promise, signature.check, signature.status, signature.code,
                   f"seen {finding.count}x in this run: {finding.title} (replace with why it is accepted)", today + DEFAULT_LIFETIME)


@dataclass(frozen=True)
class Baseline:
    """The entries of one baseline file."""

    path: Path
    entries: tuple[Entry, ...]

    def excuse(self, finding: Finding, today: datetime.date) -> Entry | None:
        """The unexpired entry that excuses this finding, if any."""
        return next((entry for entry in self.entries if entry.matches(finding) and not entry.expired(today)), None)

    def excuser(self, today: datetime.date) -> Callable[[Finding], str | None]:
        """What a finding log asks of each new finding: the label of the entry that excuses it, or None."""
        return lambda finding: entry.label if (entry := self.excuse(finding, today)) is not None else None

    def entry(self, label: str) -> Entry:
        """The entry with this label (one that excused a finding)."""
        return next(entry for entry in self.entries if entry.label == label)


def _expiry(value: Any, where: str) -> datetime.date:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise BaselineError(f"{where}: expires must be a date like 2027-03-31, got {kind(value)}") from None


def _entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise BaselineError(f"{where} must be a mapping with {', '.join(REQUIRED_KEYS)}; got {kind(raw)}")
    if "id" in raw:
        raise BaselineError(f"{where} uses `id`, the 0.1 baseline format; entries now name a finding (promise, check, status, code):"
                            " rewrite it, or make a new baseline with --write-baseline")
    unknown = sorted(set(map(str, raw)) - set(ENTRY_KEYS))
    if unknown:
        raise BaselineError(f"{where} has unknown key {unknown[0]!r} (known keys: {', '.join(ENTRY_KEYS)})")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise BaselineError(f"{where} lacks {', '.join(missing)} (every entry needs {', '.join(REQUIRED_KEYS)})")
    promise, check, status, code, reason = (raw[key] for key in ("promise", "check", "status", "code", "reason"))
    if not isinstance(promise, str):
        raise BaselineError(f"{where}: {wrong_type('promise', 'a promise id (text)', promise, text=True)}")
    if promise not in BY_ID:
        raise BaselineError(f"{where}: promise {promise!r} is not a promise of this suite (known: {', '.join(BY_ID)})")
    if not isinstance(check, str) or not check.strip():
        raise BaselineError(f"{where}: check must name the check that saw the finding (as the report shows it), got {kind(check)}")
    if status is not None and not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599):
        raise BaselineError(f"{where}: status must be an HTTP status like 404 (or null), got {kind(status)}")
    if code is not None and not isinstance(code, str):
        raise BaselineError(f"{where}: code must be an error code like ip_address_not_found (or null), got {kind(code)}")
    if not isinstance(reason, str) or not reason.strip():
        raise BaselineError(f"{where}: reason must say why the deviation is accepted, as text; got {kind(reason)}")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise BaselineError(f"{where}: {wrong_type('message', 'a regular expression (text)', message, text=True)}")
    if message is not None:
        try:
            re.compile(str(message))
        except re.error as error:
            raise BaselineError(f"{where}: message is not a valid regular expression ({error})") from None
    return Entry(promise, check.strip(), status, code, reason.strip(), _expiry(raw["expires"], where),
                 None if message is None else str(message))


def entry_key(path: Key) -> str:
    """A key of the file as messages name it: `entry 1 expires`."""
    if path and isinstance(path[0], int):
        return " ".join([f"entry {path[0] + 1}", dotted(path[1:])]).strip()
    return dotted(path)


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; every problem is a BaselineError naming the entry."""
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), entry_key)
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror}; pass an existing file with --baseline") from None
    except YamlProblem as problem:
        raise BaselineError(f"baseline {path} {problem}") from None
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise BaselineError(f"baseline {path} must be a YAML list of entries, got {type(raw).__name__}")
    entries = tuple(_entry(item, f"baseline {path} entry {index + 1}") for index, item in enumerate(raw))
    seen: set[tuple[Any, ...]] = set()
    for index, entry in enumerate(entries):
        key = (entry.promise, entry.check, entry.status, entry.code, entry.message)
        if key in seen:
            raise BaselineError(f"baseline {path} entry {index + 1} repeats an earlier entry ({entry.label}); keep one")
        seen.add(key)
    return Baseline(path, entries)


def write_baseline(path: Path, entries: Iterable[Entry]) -> None:
    """Write entries as a baseline file (secrets redacted, like everything the suite writes)."""
    body = yaml.safe_dump([entry.as_yaml() for entry in entries], sort_keys=False, allow_unicode=True, width=200)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACT(HEADER + body), encoding="utf-8")


@dataclass(frozen=True)
class Review:
    """What a run says about the baseline: entries that excused a finding, that matched nothing, that expired."""

    used: list[Entry]
    unmatched: list[Entry]
    expired: list[Entry]


def review(baseline: Baseline, findings: Iterable[Finding], today: datetime.date) -> Review:
    """The entries that excused a finding (each finding was excused once, when first recorded), those that matched nothing, those expired."""
    labels = {finding.excused_by for finding in findings if finding.excused_by is not None}
    used = [entry for entry in baseline.entries if entry.label in labels]
    expired = [entry for entry in baseline.entries if entry.expired(today)]
    unmatched = [entry for entry in baseline.entries if entry not in used and entry not in expired]
    return Review(used, unmatched, expired)
