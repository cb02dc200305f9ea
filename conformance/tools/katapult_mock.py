"""The `katapult_mock` pytest fixture for users' own tests: their httpx clients' Katapult requests answered by the reference mock.

A plugin of its own (entry point `katapult_mock`), apart from the gate's: asking for the fixture never loads or activates the
suite's session. Every pytest run in an environment with the package installed imports this module, so it imports pytest
alone; respx, httpx and the mock are imported when a test asks for the fixture (conformance/tools/mock_router.py).
"""
from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

# The keys module alone (it imports pytest and nothing of the gate's session), loaded by the gate's plugin in every run anyway.
from conformance.gate.keys import CALL_FAILED

if TYPE_CHECKING:
    from conformance.tools.mock_router import KatapultMock

MARKER = "katapult_mock"
INSTALL = "pip install 'katapult-conformance[mock]'"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that configures the fixture."""
    config.addinivalue_line("markers", f"{MARKER}(base_url=..., world=..., mutant=..., rate_limit_after=N, maintenance=False): "
                                       "configure the katapult_mock fixture (docs/mock.md)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note a test whose call failed, so the fixture's teardown does not report an unrouted request a second time."""
    report = yield
    if report.when == "call" and (report.failed or hasattr(report, "wasxfail")):
        item.stash[CALL_FAILED] = True
    return report


@pytest.fixture
def katapult_mock(request: pytest.FixtureRequest) -> Generator[KatapultMock, None, None]:
    """httpx requests to Katapult's allocate_ip and its support operations, answered by the reference mock in this process."""
    try:
        from conformance.tools.mock_router import KatapultMock, KatapultMockError
    except ModuleNotFoundError as error:
        if error.name != "respx":
            raise
        missing = True
    else:
        missing = False
    if missing:  # failed outside the except clause, so pytest prints the one line and not the import error it replaced
        pytest.fail(f"the katapult_mock fixture needs respx: {INSTALL}", pytrace=False)
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        pytest.fail(f"katapult_mock: the {MARKER} marker takes keyword options only (e.g. mutant='...'), not {marker.args!r}", pytrace=False)
    try:
        mock = KatapultMock(**(marker.kwargs if marker is not None else {}))
    except KatapultMockError as error:
        refused = str(error)
    else:
        refused = ""
    if refused:
        pytest.fail(refused, pytrace=False)
    mock.start()
    try:
        yield mock
        unanswered = mock.unanswered()
    finally:
        mock.stop()
    # A request no route answered raised in the client; a test that went on all the same (its code caught the error) fails here.
    if unanswered and not request.node.stash.get(CALL_FAILED, False):
        pytest.fail(mock.unrouted_message(unanswered), pytrace=False)
