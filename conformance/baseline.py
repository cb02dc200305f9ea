"""The baseline: accepted deviations (by promise id or test name), each with a reason and an optional expiry date.

The file is a YAML list of entries::

    - id: 403 scope_not_granted              # a promise id, or a test name like test_scenario[scope-not-granted]
      reason: staging tokens cannot lack a scope (TICKET-123)
      expires: 2026-03-31                    # optional; after this date the entry no longer excuses and fails the run
"""
from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.promises import BY_ID, DEVIATION, FAILED, SKIPPED, TestOutcome
from conformance.redact import REDACT

ENTRY_KEYS = ("id", "reason", "expires")
HEADER = (
    "# katapult-conformance baseline: accepted deviations; listed failures are reported as known and do not fail the run.\n"
    "# id: a promise id or a test name; reason: why it is accepted; expires (optional): YYYY-MM-DD.\n"
)


class BaselineError(ValueError):
    """The baseline file cannot be used; the message is one sentence naming the problem."""


@dataclass(frozen=True)
class Entry:
    """One accepted deviation."""

    id: str
    reason: str
    expires: datetime.date | None = None

    def expired(self, today: datetime.date) -> bool:
        """Whether the entry's date has passed (an entry is still valid on its expiry day)."""
        return self.expires is not None and self.expires < today

    def as_yaml(self) -> dict[str, Any]:
        """The entry as the file spells it."""
        entry: dict[str, Any] = {"id": self.id, "reason": self.reason}
        if self.expires is not None:
            entry["expires"] = self.expires
        return entry


@dataclass(frozen=True)
class Baseline:
    """The entries of one baseline file."""

    path: Path
    entries: tuple[Entry, ...]

    def excuse(self, test_name: str, promises: Iterable[str], today: datetime.date) -> Entry | None:
        """The first unexpired entry naming the test or one of the given promises, if any."""
        names = {test_name, *promises}
        return next((entry for entry in self.entries if entry.id in names and not entry.expired(today)), None)

    def expired(self, today: datetime.date) -> list[Entry]:
        """Entries whose date has passed."""
        return [entry for entry in self.entries if entry.expired(today)]


def _expiry(value: Any, where: str) -> datetime.date | None:
    if value is None or (isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise BaselineError(f"{where}.expires must be a date like 2026-03-31, got {value!r}") from None


def _entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise BaselineError(f"{where} must be a mapping like {{id: <promise or test>, reason: <why>}}, got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - set(ENTRY_KEYS))
    if unknown:
        raise BaselineError(f"{where} has unknown key {unknown[0]!r} (known keys: {', '.join(ENTRY_KEYS)})")
    entry_id, reason = raw.get("id"), raw.get("reason")
    if not isinstance(entry_id, str) or not entry_id.strip():
        raise BaselineError(f"{where} needs an id: a promise id or a test name")
    if entry_id not in BY_ID and not entry_id.startswith("test"):
        raise BaselineError(f"{where} id {entry_id!r} is neither a promise ({', '.join(BY_ID)}) nor a test name (test_...)")
    if not isinstance(reason, str) or not reason.strip():
        raise BaselineError(f"{where} ({entry_id}) needs a reason: say why the deviation is accepted")
    return Entry(entry_id, reason.strip(), _expiry(raw.get("expires"), where))


def load_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; every problem is a BaselineError with one clear sentence."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror}; pass an existing file with --baseline") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BaselineError(f"baseline {path} is not valid YAML{where}; fix the syntax") from None
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise BaselineError(f"baseline {path} must be a YAML list of entries ({{id, reason, expires}}), got {type(raw).__name__}")
    entries = tuple(_entry(item, f"baseline {path} entry {index + 1}") for index, item in enumerate(raw))
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise BaselineError(f"baseline {path} lists {entry.id!r} twice; keep one entry per id")
        seen.add(entry.id)
    return Baseline(path, entries)


def write_baseline(path: Path, entries: Iterable[Entry]) -> None:
    """Write entries as a baseline file (secrets redacted, like everything the suite writes)."""
    body = yaml.safe_dump([entry.as_yaml() for entry in entries], sort_keys=False, allow_unicode=True, width=200)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REDACT(HEADER + body), encoding="utf-8")


@dataclass(frozen=True)
class Review:
    """What a run says about the baseline: entries that excused a failure, that now conform, that expired."""

    used: list[Entry]
    fixed: list[Entry]
    expired: list[Entry]


def review(baseline: Baseline, outcomes: Iterable[TestOutcome], today: datetime.date) -> Review:
    """An unexpired entry is fixed when a test it names ran and none of them failed on what it names."""
    outcomes = list(outcomes)
    used_ids = {outcome.excused_by for outcome in outcomes}
    ran_ids = {name for o in outcomes if o.outcome != SKIPPED for name in (o.name, *o.promises)}
    failing_ids = {name for o in outcomes if o.outcome in (FAILED, DEVIATION) for name in (o.name, *o.charged)}
    used = [entry for entry in baseline.entries if entry.id in used_ids]
    fixed = [entry for entry in baseline.entries if entry.id in ran_ids - failing_ids and not entry.expired(today)]
    return Review(used, fixed, baseline.expired(today))
