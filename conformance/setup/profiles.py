"""Hypothesis profiles for generated tests: ci (deterministic), dev, thorough."""
from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, Phase, settings

# ci: derandomized (the seed is fixed by each test's source), no example database, so two runs on the same
# target send the same requests; `explicit` and `generate` only, since replaying stored examples would not be.
PROFILES: dict[str, dict[str, Any]] = {
    "ci": {"max_examples": 50, "derandomize": True, "database": None, "phases": (Phase.explicit, Phase.generate, Phase.shrink)},
    "dev": {"max_examples": 60, "derandomize": False},
    "thorough": {"max_examples": 1500, "derandomize": False, "database": None},
}
COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": False}


def suite_settings(active: str, max_examples: int | None = None) -> settings:
    """The settings of the suite's generated tests: hypothesis' own defaults, then COMMON, the profile and any resize.

    Built from the "default" profile, never loaded: a host project's hypothesis tests keep whatever they had.
    """
    resized = {"max_examples": max_examples} if max_examples is not None else {}
    return settings(settings.get_profile("default"), **{**COMMON, **PROFILES[active], **resized})


CI_SEED = 20261127


def session_seed(profile: str, given: int | None) -> int:
    """The seed every generated test uses: --hypothesis-seed if given, fixed for ci, fresh for dev and thorough."""
    if given is not None:
        return given
    return CI_SEED if profile == "ci" else random.SystemRandom().getrandbits(32)
