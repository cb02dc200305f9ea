"""bench/bench.py's reading and arithmetic, on recorded outputs (the bench itself takes minutes: `python bench/bench.py`)."""
from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from conformance.tools.docs import section
from conformance.wire import transport

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> ModuleType:
    """A module of bench/ by file (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"katapult_bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = load("bench")

# The end of `pytest --pyargs conformance -q` (the plugin's generated-cases section) and of `st run`, as they print them.
SUITE_OUTPUT = """\
========== katapult-conformance: generated cases by status ==========
test_responses_conform: 400 cases; 200: 12%, 400: 60%, 404: 28%
test_exclusivity_two_values_are_ambiguous: 226 cases; 400: 100%
test_stateful_allocation: 33 cases; 200: 82%, 422: 18%
58 passed in 3.68s
"""
CLI_OUTPUT = """\
Test cases:
  1958 generated, 1958 passed

Seed: 1
"""
REPORT = {"requests": {"sent": 412, "by_status": {"200": 31, "400": 290, "429": 16}, "preflight": 12, "throttled": 0}}


def figures(live: bool = True) -> object:
    """A bench result with round numbers."""
    run = bench.Run
    return bench.Figures(cli_small=run(300, 4.0), cli_large=run(1500, 16.0), suite_small=run(250, 2.0), suite_large=run(1250, 3.0),
                         suite_whole=run(2000, 4.0), cli_whole=run(2000, 20.0), cores=2, startup=bench.StartUp(0.9, 0.75, 0.2),
                         live=bench.live_count(REPORT, 41.0) if live else None)


def test_reads_case_counts_from_both_outputs() -> None:
    """The suite's cases are the sum of its per-test lines; the CLI's are its `N generated`; a run that did not pass is refused."""
    assert bench.suite_cases(SUITE_OUTPUT) == 400 + 226 + 33
    assert bench.passing_cases(SUITE_OUTPUT) == 659
    assert bench.cli_cases(CLI_OUTPUT) == 1958
    assert bench.cli_cases("usage: st run ...") is None
    with pytest.raises(SystemExit, match="did not pass"):
        bench.passing_cases(SUITE_OUTPUT.replace("58 passed", "1 failed, 57 passed"))


def test_the_suite_line_the_bench_reads_is_the_one_the_plugin_writes() -> None:
    """bench.SUITE_CASES matches the plugin's `name: N cases[; shares]` line, so a reworded line cannot go unread (and count 0)."""
    source = (ROOT / "conformance" / "gate" / "plugin.py").read_text(encoding="utf-8")
    assert 'f"{name}: {total} cases"' in source
    assert bench.SUITE_CASES.findall("test_a: 12 cases; 400: 100%\ntest_b: 0 cases\n") == [("test_a", "12"), ("test_b", "0")]


def test_rates_slope_and_ratios() -> None:
    """Whole-process cases/s is cases over wall; the slope is the cases added over the seconds added; ratios divide."""
    result = figures()
    assert result.suite_whole.rate == 500 and result.cli_whole.rate == 100
    assert bench.slope(result.cli_small, result.cli_large) == 100
    assert bench.slope(result.suite_small, result.suite_large) == 1000
    assert bench.ratio(500, 100) == 5


def test_live_count_reads_the_report_and_keeps_the_preflight_apart() -> None:
    """requests.sent is the tests' own; the preflight's and the throttled are read beside it."""
    count = bench.live_count(REPORT, 41.0)
    assert (count.sent, count.preflight, count.throttled, count.statuses["429"]) == (412, 12, 0, 16)


def test_markdown_carries_every_figure() -> None:
    """Both tables, both ratios and the live count; without the live run, no live line."""
    text = bench.markdown(figures())
    assert "| `pytest --pyargs conformance`, `ci` profile, in-process mock | 2000 | 4.0 s | 500 |" in text
    assert "| `st run` (schemathesis CLI), same operation, loopback mock | 2000 | 20.0 s | 100 |" in text
    assert "Whole process: **5.0x**" in text and "Slope (start-up cancelled out): **10.0x**" in text
    assert "**412 requests** (plus 12 preflight), 0 throttled" in text
    assert "`pytest --pyargs conformance --co -q`: **0.90 s**" in text and "0.75 s with the environment's other plugins" in text
    assert "Live" not in bench.markdown(figures(live=False))
    assert "ratio 5.0x" in bench.plain(figures()) and "412 requests" in bench.plain(figures())


def test_docs_speed_holds_what_this_bench_writes() -> None:
    """docs/speed.md's bench section was written by this version of the bench: the same tables and lines, in order."""
    written = section((ROOT / "docs" / "speed.md").read_text(encoding="utf-8"), "bench")
    assert written is not None

    def shape(text: str) -> list[str]:
        # Numbers aside (and the live line's list of statuses, as long as the run made it).
        return [re.sub(r"\d[\d.,]*", "N", line).split(" by status ")[0] for line in text.splitlines()]

    assert shape(written) == shape(bench.markdown(figures()))


def test_scaled_clock_plugin_speeds_up_live_pacing_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The -p plugin makes a live target wait a sixth of the time on a clock six times as fast; the mock is untouched."""
    monkeypatch.setattr(transport, "LIVE_CLOCK", transport.LIVE_CLOCK)
    monkeypatch.delenv("KATAPULT_CLOCK_SCALE", raising=False)
    sys.modules.pop("conformance.tools.scaled_clock", None)
    importlib.import_module("conformance.tools.scaled_clock")
    target = transport.live_target("http://127.0.0.1:9/core/v1", timeout=1.0, max_requests=1, max_rate=1.0)
    try:
        started, on_clock = time.monotonic(), target.pacer.now()
        target.pacer.sleep(0.3)
        assert time.monotonic() - started < 0.2
        assert abs(on_clock / time.monotonic() - 6) < 0.01
    finally:
        target.close()


# What issue 18 set for a default live run with a 200-a-minute token, the preflight's requests apart.
LIVE_REQUEST_BUDGET = 350


@pytest.mark.nightly
def test_a_default_live_run_at_200_a_minute_stays_within_its_request_budget() -> None:
    """The bench's live run (served mock, --permitted 200): it passes, sends at most 350 requests, none throttled, and the
    429 burst ends with about one 429 (the pacer spent the window to its floor first, so the burst only spends the rest)."""
    count = bench.live_run()
    assert count.sent <= LIVE_REQUEST_BUDGET, count
    assert count.throttled == 0 and 1 <= count.statuses.get("429", 0) <= 2, count
    # The burst spends the window's floor (a fifth of 200) plus its 429, not the bulk of a window.
    assert count.statuses.get("404", 0) <= 80, count
