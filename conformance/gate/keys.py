"""The plugin's stash keys, on the ground floor: every part of the plugin reads the run's state through these, never through each other."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path  # noqa: F401

    # Named in the keys' strings, never imported at run time: the session is built from these keys' values, and every
    # part of the plugin imports this module, so it must not pull the preflight, the checks or hypothesis in with it.
    from hypothesis import settings  # noqa: F401

    from conformance.contract.findings import FindingLog, RunContext, TestScope  # noqa: F401
    from conformance.gate.heap import StartUpHeap  # noqa: F401
    from conformance.gate.merged import Merged  # noqa: F401
    from conformance.gate.preflight import Preflight  # noqa: F401
    from conformance.gate.runlock import RunLock  # noqa: F401
    from conformance.gate.session import ConformanceSession, RunRecord  # noqa: F401
    from conformance.setup.fixtures import TargetFixtures  # noqa: F401
    from conformance.setup.settings import SuiteConfig  # noqa: F401
    from conformance.wire.har import HarRecorder  # noqa: F401

CONFIG_KEY = pytest.StashKey["SuiteConfig"]()
FIXTURES_KEY = pytest.StashKey["TargetFixtures"]()
SESSION_KEY = pytest.StashKey["ConformanceSession"]()
SEED_KEY = pytest.StashKey[int]()
FINDINGS_KEY = pytest.StashKey["FindingLog"]()
# The run's state its checks read and write (the active run while the config lives): scope, authenticated headers, secrets.
RUN_KEY = pytest.StashKey["RunContext"]()
SETTINGS_KEY = pytest.StashKey["settings"]()
PREFLIGHT_KEY = pytest.StashKey["Preflight"]()
HEAP_KEY = pytest.StashKey["StartUpHeap"]()
# Why the run stopped before its end because the target stopped answering (exit 4); absent when it ran to its end.
STOPPED_KEY = pytest.StashKey[str]()
# Set when the run is recorded (--record): the HAR record every target of this process writes to.
RECORDER_KEY = pytest.StashKey["HarRecorder"]()
# Set on the xdist controller only: what every worker did, merged (elsewhere the session keeps its own record).
RECORD_KEY = pytest.StashKey["RunRecord"]()
# On the xdist controller: every worker's data as it comes in (gate.xdist).
MERGED_KEY = pytest.StashKey["Merged"]()
# The lock that keeps two runs off one live target at once (gate.xdist).
LOCK_KEY = pytest.StashKey["RunLock"]()
# On each test item: the scope its checks reported to while it ran (gate.reporting).
SCOPE_KEY = pytest.StashKey["TestScope"]()
# On the xdist controller: the file its preflight's result is written to for the workers (gate.xdist).
SHARED_PREFLIGHT_KEY = pytest.StashKey["Path"]()
# On each item of a test using the katapult_mock fixture: whether its call failed (tools.katapult_mock, a plugin apart from the gate).
CALL_FAILED = pytest.StashKey[bool]()


def run_record(config: pytest.Config) -> RunRecord | None:
    """The run's record: the xdist controller's merged one, else the one this process's session keeps."""
    merged = config.stash.get(RECORD_KEY, None)
    if merged is not None:
        return merged
    session = config.stash.get(SESSION_KEY, None)
    return session.record() if session is not None else None
