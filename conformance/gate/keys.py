"""The plugin's stash keys, on the ground floor: every part of the plugin reads the run's state through these, never through each other."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from conformance.contract.findings import FindingLog
from conformance.gate.preflight import Preflight
from conformance.setup.fixtures import TargetFixtures
from conformance.setup.settings import SuiteConfig

if TYPE_CHECKING:
    # The session is built from these keys' values, so it is named here as a string, never imported at run time.
    from conformance.gate.session import ConformanceSession  # noqa: F401

CONFIG_KEY = pytest.StashKey[SuiteConfig]()
FIXTURES_KEY = pytest.StashKey[TargetFixtures]()
SESSION_KEY = pytest.StashKey["ConformanceSession"]()
SEED_KEY = pytest.StashKey[int]()
FINDINGS_KEY = pytest.StashKey[FindingLog]()
SETTINGS_KEY = pytest.StashKey[settings]()
PREFLIGHT_KEY = pytest.StashKey[Preflight]()
