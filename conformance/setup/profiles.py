"""Hypothesis profiles for generated tests: ci (deterministic), dev, thorough."""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def without_local_constants() -> Iterator[None]:
    """Generate without hypothesis' pool of constants from the local modules loaded, so the same profile draws the same cases
    whatever else is imported: an editable or a wheel install, `pytest` or `python -m pytest`, a host's own modules, an xdist worker.
    """
    # Private to hypothesis (hypothesis.internal.conjecture.providers, 6.150 to 6.x): the pool is read through
    # _get_local_constants and cached per choice type in CONSTANTS_CACHE. Without them the suite still runs, only less
    # reproducibly; tests/test_generated_props.py holds the same cases with and without other local modules loaded.
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.constants_ast import Constants

    original = getattr(providers, "_get_local_constants", None)
    if original is None:
        yield
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


@contextmanager
def failing_case_printed() -> Iterator[None]:
    """Hypothesis' own printer for a failing example's arguments: importing schemathesis swaps in one that prints nothing
    (`Failing test case: property_(batch=,)`), to spare its own runner the cost; a failing example is printed once."""
    # Private to hypothesis and schemathesis (hypothesis.core.RepresentationPrinter, swapped by schemathesis 4's
    # generation.hypothesis.setup): where either moves, this restores nothing and the example prints as before.
    from hypothesis import core
    from hypothesis.vendor import pretty

    swapped = getattr(core, "RepresentationPrinter", None)
    if swapped is None:
        yield
        return
    setattr(core, "RepresentationPrinter", pretty.RepresentationPrinter)  # noqa: B010 (not exported: mypy refuses the attribute)
    try:
        yield
    finally:
        setattr(core, "RepresentationPrinter", swapped)  # noqa: B010
